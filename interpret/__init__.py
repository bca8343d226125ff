"""interpret: see docs/architecture.md."""
