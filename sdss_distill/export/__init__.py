"""A run's models to LiteRT flatbuffers (convert), QAT/pruning in a tf_keras child process
(finetune), and measurements of what was written."""
