"""Benchmarks of ocsps against plain pypsrp on the loopback lab: run ``python -m bench`` (see README.md)."""
