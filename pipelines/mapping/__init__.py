"""Exam-code mapping: the standard item catalog, parsing and splitting of local item names, per-hospital tables."""
