"""The demo world: a deterministic set of Anhui hospitals, patients, exams, DICOM files and reports.

``build_world`` is pure; ``load_demo`` writes the DICOM files and appends the world's events to the log.
"""
from wanying.demo.load import load_demo
from wanying.demo.world import World, build_world

__all__ = ["World", "build_world", "load_demo"]
