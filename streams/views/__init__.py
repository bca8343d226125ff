"""Materialized views: the projector and the read-model tables."""
from streams.views.projector import ApplyResult, Projector

__all__ = ["ApplyResult", "Projector"]
