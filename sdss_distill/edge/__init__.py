"""The edge runtime: numpy + LiteRT only, never TensorFlow (a Raspberry Pi installs nothing else)."""
