"""Deployment files for the province, and the starters of local services used by tests and benchmarks."""
