"""Benchmarks: programs that print figures for docs/performance.md (`make bench`).

They are not tests: pytest does not collect them and they assert nothing about speed.
Each starts the real servers it needs on free ports of 127.0.0.1 and stops them at the end.
"""
