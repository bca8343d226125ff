"""The event log port and its backends (embedded SQLite, Kafka)."""
from streams.log.port import Consumer, EventLog, LogRecord, Position, partition_for

__all__ = ["Consumer", "EventLog", "LogRecord", "Position", "partition_for"]
