"""Tables (tables.py, critical_difference.py; formatting.py formats their cells) and
figures (figures.py) built from results/metrics.csv."""
