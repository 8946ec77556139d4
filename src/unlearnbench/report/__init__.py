"""Tables (tables.py, critical_difference.py; formatting.py formats them) and figures (figures.py) built from results/metrics.csv."""
