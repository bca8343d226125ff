"""Split + map accuracy on realistic local item names from several hospitals' naming styles."""
from __future__ import annotations

import csv
from pathlib import Path

from pipelines.mapping.catalog import default_catalog
from pipelines.mapping.resolve import ItemResolver

DATA = Path(__file__).parent / "data" / "item_names.csv"
FLOOR = 0.95


def test_mapping_accuracy_on_gold_set():
    rows = list(csv.DictReader(DATA.open(encoding="utf-8")))
    resolver = ItemResolver(default_catalog())
    hits, misses = 0, []
    for row in rows:
        gold = {c for c in row["gold_items"].split(";") if c}
        res = resolver.resolve(row["local_name"])
        got = set(res.items) if res.complete else set()  # incomplete -> review queue, i.e. nothing auto-mapped
        if got == gold:
            hits += 1
        else:
            misses.append((row["local_name"], sorted(gold), sorted(got), res.problems))
    accuracy = hits / len(rows)
    print(f"mapping_eval accuracy={accuracy:.4f} n={len(rows)}")
    for miss in misses:
        print("  miss:", miss)
    assert len(rows) >= 100
    assert len({r["hospital"] for r in rows}) >= 4
    assert accuracy >= FLOOR, misses


def test_gold_items_exist_in_catalog():
    catalog = default_catalog()
    for row in csv.DictReader(DATA.open(encoding="utf-8")):
        for code in filter(None, row["gold_items"].split(";")):
            assert code in catalog.items, (row["local_name"], code)
