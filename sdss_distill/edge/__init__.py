"""The edge runtime: numpy + LiteRT only, never TensorFlow (a Raspberry Pi installs nothing else).

    from sdss_distill.edge import EdgeClassifier
"""

from sdss_distill.edge.classifier import EdgeClassifier, Prediction

__all__ = ["EdgeClassifier", "Prediction"]
