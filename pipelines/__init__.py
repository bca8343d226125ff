"""Edges: ingest, storage, code mapping, notification channels and crypto."""
