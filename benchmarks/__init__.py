"""Benchmarks of the service against the bare graph; see README.md."""
