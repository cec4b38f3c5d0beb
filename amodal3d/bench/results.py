"""``results.jsonl``: one JSON row per (scene, configuration), appended and fsynced as each finishes.

Crash safety: a row is a single line ending in a newline, written by one process (the run's driver). A run killed
mid-write leaves at most a torn last line with no newline; opening the log cuts it off, so that row is computed
again. Rows already present are never recomputed or written twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def row_key(row: dict) -> tuple[str, str]:
    return row["scene"], row["config"]


class ResultsLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self.keys: set[tuple[str, str]] = set()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line from a killed run
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if row_key(row) not in self.keys:
                self.keys.add(row_key(row))
                self.rows.append(row)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.keys

    def add(self, row: dict) -> bool:
        """Append ``row`` unless its key is already logged; True if written."""
        key = row_key(row)
        if key in self.keys:
            return False
        line = json.dumps(row, allow_nan=True, default=_plain) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.keys.add(key)
        self.rows.append(row)
        return True


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_plain) + "\n")


def _plain(obj):
    import numpy as np

    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
