"""Runtimes that feed the log to the processors: embedded (in-process) and Faust on Kafka."""
