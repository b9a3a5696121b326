"""Live catalog changes: validated lines in, one atomic batch of the index's feed out.

A change is a JSON object: ``{"product_id": "p1", "price": 9.5, "in_stock": false}``
sets those fields (a new product needs at least a title), ``{"product_id": "p1",
"delete": true}`` withdraws it. A batch is all or nothing: one bad line rejects
it, naming the line, before anything is written. The feed stores each product's
whole state after the change, and a new vector only when its text changed, so
a price or stock change costs no embedding (``index/feed.py``). Retrievers
apply new batches within ``retriever.feed_check_s``; a batch that adds or
withdraws a brand, category, color or attribute value also records the new
vocabulary, which the parser's terms follow (``stages/parse/stage.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable

from pydantic import BaseModel, ValidationError

from shopray.config import AppConfig
from shopray.domain import Product, Vocabulary
from shopray.embedding import Embedder, index_encoder, shared_embedder
from shopray.stages.retrieve.index import FeedConflict, IndexReader, IndexStore, open_store
from shopray.stages.retrieve.index.feed import FeedRow

MAX_BATCH = 100_000
CONFLICT_RETRIES = 5  # a feed on Redis takes batches optimistically: one that raced another is validated again
EDITABLE = frozenset(Product.model_fields) - {"product_id"}
# A change to one of these may change the vocabulary the parser names values from.
VOCABULARY_FIELDS = ("brand", "category", "color", "attributes")


class ChangeRejected(ValueError):
    """A bad change; ``line`` is 1-based within the batch."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line, self.message = line, message

    def __reduce__(self):  # crosses to the ingress from the writer's process
        return type(self), (self.line, self.message)


class FeedMismatch(RuntimeError):
    """The feed ends before the change the published index was built with: it is not this index's feed (``index.feed``
    changed since the build?), and a change appended to it would never show."""


class Change(BaseModel):
    product_id: str
    delete: bool = False
    fields: dict[str, object] = {}


@dataclass(frozen=True)
class Applied:
    first_seq: int  # 0 when the batch changed nothing
    last_seq: int
    upserted: int
    deleted: int


def with_changes(products: list[Product], rows: list[FeedRow]) -> list[Product]:
    """The catalog as the feed's rows leave it: changed products replaced, deleted ones gone, new ones at the end."""
    by_id = {p.product_id: p for p in products}
    for row in rows:
        if row.product is None:
            by_id.pop(row.product_id, None)
        else:
            by_id[row.product_id] = Product.model_validate(row.product)
    return list(by_id.values())


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'change'}: {e['msg']}" for e in exc.errors())


def parse_change(obj: object, line: int) -> Change:
    """Check one change on its own: its fields exist and hold values a product may have."""
    if not isinstance(obj, dict):
        raise ChangeRejected(line, "a change is a JSON object with a product_id")
    data = dict(obj)
    delete = data.pop("delete", False)
    if not isinstance(delete, bool):
        raise ChangeRejected(line, "delete must be true or false")
    if "product_id" not in data:
        raise ChangeRejected(line, "product_id is missing")
    unknown = sorted(set(data) - EDITABLE - {"product_id"})
    if unknown:
        raise ChangeRejected(line, f"unknown field(s) {', '.join(unknown)}; a product has {', '.join(sorted(EDITABLE))}")
    if delete and len(data) > 1:
        raise ChangeRejected(line, "a delete names only the product_id")
    if not delete and len(data) == 1:
        raise ChangeRejected(line, "the change sets no field")
    try:
        # The product's own rules check each given field; the placeholder title stands in for a partial change's.
        checked = Product.model_validate({"title": "-", **data})
    except ValidationError as exc:
        raise ChangeRejected(line, _errors(exc)) from None
    given = set(data) - {"product_id"}
    return Change(product_id=checked.product_id, delete=delete, fields=checked.model_dump(include=given))


def parse_lines(lines: Iterable[str]) -> list[Change]:
    """JSON Lines (blank lines skipped) into changes; the first bad line rejects the batch."""
    changes: list[Change] = []
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChangeRejected(n, f"not JSON: {exc.msg}") from None
        changes.append(parse_change(obj, n))
        if len(changes) > MAX_BATCH:
            raise ChangeRejected(n, f"a batch holds at most {MAX_BATCH} changes")
    return changes


class CatalogWriter:
    """Appends batches to an index's feed; the encoder loads only for the first change of a product's text."""

    def __init__(self, store: IndexStore, embedding_for: Callable[[str], Embedder]):
        """``embedding_for``: the encoder of an index that records the given ``embedding_model``."""
        self.store, self._embedding_for = store, embedding_for
        self._reader: IndexReader | None = None  # of the published version, kept open: opening one costs more than a batch

    @classmethod
    def from_config(cls, config: AppConfig) -> "CatalogWriter":
        return cls(open_store(config.index), lambda recorded: shared_embedder(index_encoder(config.embedding, recorded)))

    def apply(self, changes: list[Change]) -> Applied:
        """Validate the batch against the catalog as it stands and append it in one transaction."""
        version = self.store.current_version()
        if self._reader is None or self._reader.version != version:
            old, self._reader = self._reader, self.store.open(version)
            if old is not None:
                old.close()
        if (last := self.store.feed.last_seq()) < self._reader.manifest.feed_seq:
            raise FeedMismatch(f"index {self.store.name} version {version} was built with change {self._reader.manifest.feed_seq} of its feed, "
                               f"but the configured feed ends at change {last}; rebuild the index (shopray index) to start from this feed")
        for _ in range(CONFLICT_RETRIES - 1):
            try:
                return self._append(changes, self._reader)
            except FeedConflict:
                continue
        return self._append(changes, self._reader)

    def _append(self, changes: list[Change], reader: IndexReader) -> Applied:
        ids = list(dict.fromkeys(c.product_id for c in changes))
        with self.store.feed.writing() as feed:
            latest = feed.latest(ids)
            indexed = {h.product_id: h.payload for h in reader.retrieve([p for p in ids if p not in latest])}
            state: dict[str, dict | None] = {p: latest[p].product if p in latest else indexed.get(p) for p in ids}
            rows: list[tuple[str, Product | None, bool]] = []  # (id, product or None, text changed)
            vocabulary_changed = False
            for line, change in enumerate(changes, 1):
                current = state[change.product_id]
                if change.delete:
                    if current is not None:
                        rows.append((change.product_id, None, False))
                        vocabulary_changed = True
                    state[change.product_id] = None
                    continue
                try:
                    product = Product.model_validate({**(current or {}), **change.fields, "product_id": change.product_id})
                except ValidationError as exc:
                    why = "unknown product: a new one needs a title" if current is None and "title" not in change.fields else _errors(exc)
                    raise ChangeRejected(line, why) from None
                text_changed = current is None or Product.model_validate(current).search_text() != product.search_text()
                rows.append((change.product_id, product, text_changed))
                payload = state[change.product_id] = product.payload()
                vocabulary_changed |= current is None or any(payload.get(f) != current.get(f) for f in VOCABULARY_FIELDS)
            encoder = reader.manifest.embedding_model
            texts = [p.search_text() for _, p, changed in rows if changed and p is not None]
            vectors = iter(self._embedding_for(encoder).encode(texts) if texts else [])
            seqs = [feed.append(pid, p.payload() if p is not None else None, next(vectors) if changed else None, encoder if changed else None)
                    for pid, p, changed in rows]
            if vocabulary_changed:
                # Rare (a new brand, a withdrawn product): worth a pass over the catalog, so the parser names only what is there.
                catalog = with_changes(reader.products(), feed.since(reader.manifest.feed_seq))
                feed.set_vocabulary(seqs[-1], Vocabulary.from_products(catalog))
        deleted = sum(p is None for _, p, _ in rows)
        return Applied(seqs[0] if seqs else 0, seqs[-1] if seqs else 0, len(rows) - deleted, deleted)
