"""Reproduction of Zeiler & Fergus (2013), "Visualizing and Understanding Convolutional Networks"."""

__version__ = "0.1.0"
