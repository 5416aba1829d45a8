"""Helpers shared by the demo's scripts (a workspace-local import: a code dep of each)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence

import pandas as pd

LABEL = "target"


def read_table(path: str) -> pd.DataFrame:
    return pd.read_csv(path)


def write_json(path: str, data: dict[str, object]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def write_csv(path: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
