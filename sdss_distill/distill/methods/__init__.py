"""One small module per distillation method; distill/registry.py lists them in order."""
