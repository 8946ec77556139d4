"""unlearnbench: the Deep Unlearn benchmark of machine unlearning for image classifiers."""

__version__ = "0.1.0"

REFERENCES = ("original", "retrained")
"""The two reference models every method is compared with (defined once here, free of
torch and pandas, for the workflow's controller, the jobs and the report alike)."""
