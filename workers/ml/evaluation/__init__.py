"""Measuring graders against human scores: statistics (stats.py), the ASAP evaluation and validity
report (asap_eval.py, validity.py, report.py), the review flags' stress set (stress.py)."""
