"""Membership-inference attacks: population MIA (mia.py) and U-LiRA (ulira.py)."""
