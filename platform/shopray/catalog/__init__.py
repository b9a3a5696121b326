"""Catalog import: JSONL, CSV and Parquet files into validated Products.

Bad rows never abort an import and are never dropped silently: each one is
reported with its line number (1-based, header counted for CSV) and a reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from shopray.catalog.demo import generate_demo_catalog
from shopray.domain import Product

log = logging.getLogger(__name__)

PRODUCT_FIELDS = set(Product.model_fields)


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class CatalogLoad:
    products: list[Product]
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.products)} products loaded, {len(self.bad_rows)} bad rows skipped"


def _to_product(raw: dict) -> Product:
    """Map a loose row onto Product: unknown columns become attributes."""
    data: dict = {}
    attributes: dict[str, str] = {}
    for key, value in raw.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, float) and value != value:  # NaN from pandas/parquet
            continue
        if key in PRODUCT_FIELDS:
            data[key] = value
        else:
            attributes[str(key)] = str(value)
    if isinstance(data.get("attributes"), str):
        data["attributes"] = json.loads(data["attributes"])
    if "price" in data and isinstance(data["price"], str):
        data["price"] = float(data["price"].replace("$", "").replace(",", ""))
    data["attributes"] = {**{str(k): str(v) for k, v in data.get("attributes", {}).items()}, **attributes}
    return Product.model_validate(data)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict | Exception]]:
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                if not isinstance(row, dict):
                    raise ValueError("row is not a JSON object")
                yield line_no, row
            except (UnicodeDecodeError, ValueError) as exc:
                yield line_no, exc


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | Exception]]:
    # Decode line by line so one non-UTF-8 row is reported instead of failing the file.
    with path.open("rb") as fh:
        header_raw = fh.readline()
        header = next(csv.reader([header_raw.decode("utf-8-sig")]))
        for line_no, raw in enumerate(fh, start=2):
            if not raw.strip():
                continue
            try:
                values = next(csv.reader(io.StringIO(raw.decode("utf-8"))))
            except UnicodeDecodeError as exc:
                yield line_no, exc
                continue
            if len(values) != len(header):
                yield line_no, ValueError(f"expected {len(header)} columns, got {len(values)}")
                continue
            yield line_no, dict(zip(header, values))


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict | Exception]]:
    import pyarrow.parquet as pq

    for line_no, row in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield line_no, row


READERS = {".jsonl": _jsonl_rows, ".json": _jsonl_rows, ".csv": _csv_rows, ".parquet": _parquet_rows}


AVAILABILITY = {"in_stock", "quantity"}


def catalog_sha256(products: list[Product]) -> str:
    """The catalog's content: an index version and the models trained for it are keyed by it. Availability is not
    content a model learns from: a stock change keeps the key."""
    digest = hashlib.sha256()
    for p in products:
        digest.update(p.model_dump_json(exclude=AVAILABILITY).encode())
    return digest.hexdigest()


def load_products(catalog: str) -> CatalogLoad:
    """'demo' means the generated demo catalog; anything else is a file path."""
    if catalog == "demo":
        return CatalogLoad(products=generate_demo_catalog())
    return load_catalog(Path(catalog))


def load_catalog(path: str | Path) -> CatalogLoad:
    """Load products from a JSONL, CSV or Parquet file, skipping and reporting bad rows."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"unsupported catalog format {path.suffix!r}; use one of {sorted(READERS)}")
    load = CatalogLoad(products=[])
    seen: dict[str, int] = {}
    for line_no, row in reader(path):
        if isinstance(row, Exception):
            load.bad_rows.append(BadRow(line_no, _reason(row)))
            continue
        try:
            product = _to_product(row)
        except (ValidationError, ValueError, TypeError) as exc:
            load.bad_rows.append(BadRow(line_no, _reason(exc)))
            continue
        if product.product_id in seen:
            load.bad_rows.append(
                BadRow(line_no, f"duplicate product_id {product.product_id!r} (first on line {seen[product.product_id]})")
            )
            continue
        seen[product.product_id] = line_no
        load.products.append(product)
    for bad in load.bad_rows:
        log.warning("%s line %d skipped: %s", path.name, bad.line, bad.reason)
    return load
