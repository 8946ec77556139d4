"""Tables (tables.py) and figures (figures.py) built from results/metrics.csv."""
