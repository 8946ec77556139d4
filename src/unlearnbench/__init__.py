"""unlearnbench: the Deep Unlearn benchmark of machine unlearning for image classifiers."""

__version__ = "0.1.0"
