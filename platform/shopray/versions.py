"""Sortable version ids and atomic pointer files, shared by the index and the model registry."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path


def new_version() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("v%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def atomic_write_text(path: Path, text: str) -> None:
    """Readers see the old content or the new, never a torn file (rename is atomic on POSIX)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
