"""Scoring runs: plan, beat sources, engines, sinks, summary and report.

Read :mod:`anomaly.scoring.base` first: it declares the roles the other modules fill.
"""
