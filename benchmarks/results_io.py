"""Shared by the benchmark scripts: write a result payload as JSON and say where."""

from __future__ import annotations

import json
import os


def write_results(path: str, payload: dict) -> None:
    """Write ``payload`` to ``path`` (creating its folder) and print the path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"wrote {path}")
