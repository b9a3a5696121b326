"""How every benchmark prints: percentiles, the command behind the figures, markdown tables.

Percentiles are numpy's (linear interpolation between the closest ranks), so a
p99 printed by one benchmark means what it means in every other.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PYTHON = ".venv/bin/python"


def percentiles(
    values: Iterable[float],
    qs: Sequence[float] = (50, 95, 99),
    *,
    scale: float = 1.0,
    digits: int | None = 1,
    suffix: str = "_ms",
    mean: bool = False,
) -> dict[str, float | None]:
    """``{"p50_ms": .., "p95_ms": .., "p99_ms": ..}`` of ``values * scale`` (and ``mean_ms`` when asked).

    ``scale=1000`` turns seconds into milliseconds; ``digits=None`` leaves the
    figures unrounded. With no values every figure is None (JSON null).
    """
    arr = np.asarray(list(values), dtype=float) * scale
    keys = [f"p{q:g}{suffix}" for q in qs] + ([f"mean{suffix}"] if mean else [])
    if arr.size == 0:
        return dict.fromkeys(keys)
    figures = [float(x) for x in np.percentile(arr, list(qs))] + ([float(arr.mean())] if mean else [])
    return {key: (x if digits is None else round(x, digits)) for key, x in zip(keys, figures)}


def command(args: Sequence[str] | None = None, script: str | None = None) -> str:
    """``.venv/bin/python benchmarks/NAME.py ARGS``: how to run again what printed the figures.

    ``args`` default to this process's arguments and ``script`` to its script;
    a script in a ``benchmarks`` folder is named from the repository root.
    """
    script = script if script is not None else sys.argv[0]
    path = Path(script)
    name = f"benchmarks/{path.name}" if path.parent.name == "benchmarks" else script
    return shlex.join([PYTHON, name, *(sys.argv[1:] if args is None else args)])


def print_command(args: Sequence[str] | None = None, script: str | None = None) -> str:
    """Print the ``command:`` line (the one format every benchmark uses) and return the command."""
    line = command(args, script)
    print(f"command: {line}", flush=True)
    return line


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table: the first column left-aligned (names), the others right-aligned (figures)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)!r} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)
