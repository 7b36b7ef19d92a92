"""Benchmarks: each prints our numbers beside the raw library's from the same run."""
