"""Benchmarks: scripts that measure speed and memory and print their figures."""
