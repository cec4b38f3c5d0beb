"""``results.jsonl``: one JSON row per (scene, configuration), appended and fsynced as each finishes.

Crash safety: a row is a single line ending in a newline, written by one process (the run's driver). A run killed
mid-write leaves at most a torn last line with no newline; opening the log cuts it off, so that row is computed
again. Rows already present are never recomputed or written twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from metrics.specs import BY_KEY


@dataclass
class Row:
    """One (scene, configuration) result. ``values`` holds the metrics by their key in ``metrics.specs.METRICS``
    (None where a metric is unavailable, e.g. LPIPS without weights, with the reason in ``lpips_unavailable``).
    In results.jsonl a row is one flat JSON object (identity fields and metric values side by side)."""

    scene: str
    config: str
    table: str
    input: str
    completion: str | None = None
    recon: str | None = None
    occlusion: float = 0.0
    target: str = ""
    category: str = ""
    seed: int = 0
    samples: int = 0
    scene_path: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    lpips_unavailable: str | None = None
    artifact: str | None = None
    mesh: str | None = None
    faces: int | None = None
    recon_seconds: float | None = None
    recon_choice: str | None = None  # what an automatic reconstructor chose (e.g. the shape prior)

    @property
    def key(self) -> tuple[str, str]:
        return self.scene, self.config

    def value(self, key: str) -> float | None:
        return self.values.get(key)

    def to_json(self) -> dict:
        plain = {k: v for k, v in asdict(self).items() if k != "values"}
        return {**plain, **self.values}

    @classmethod
    def from_json(cls, data: dict) -> "Row":
        names = {f.name for f in fields(cls)} - {"values"}
        return cls(**{k: v for k, v in data.items() if k in names},
                   values={k: v for k, v in data.items() if k in BY_KEY})


def row_key(row) -> tuple[str, str]:
    return (row["scene"], row["config"]) if isinstance(row, dict) else row.key


class ResultsLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[Row] = []
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
            row = Row.from_json(json.loads(line))
            if row_key(row) not in self.keys:
                self.keys.add(row_key(row))
                self.rows.append(row)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.keys

    def add(self, row: Row) -> bool:
        """Append ``row`` unless its key is already logged; True if written."""
        key = row_key(row)
        if key in self.keys:
            return False
        line = json.dumps(row.to_json(), allow_nan=True, default=_plain) + "\n"
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
