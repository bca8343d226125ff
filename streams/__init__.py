"""Log backends, pure processors, the two runtimes and the materialized views."""
