"""qc: see docs/architecture.md."""
