"""Training data for the cross-encoder: graded Home Depot judgments plus synthetic demo-catalog pairs.

Data arrives as query groups (one query, several products with labels in
[0, 1]) so validation can compute NDCG@10 per query, the re-rank protocol.

The Home Depot data is read in place from ``../shared/data/homedepot`` and is
never copied; it is split 80/20 into train and validation by a salted hash
of the lower-cased query, so a query and all its spellings in case stay on one
side, and the split is the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from shopray.catalog.demo import generate_demo_catalog
from shopray.config import CHECKOUT
from shopray.domain import Product
from shopray.evaluation import Judgments, load_judgments

SPLIT_SALT = "shopray-ranker-split-v1:"
VAL_PERCENT = 20


@dataclass
class Group:
    """One query and the products judged (or generated) for it."""

    query: str
    ids: list[str]
    texts: list[str]
    labels: list[float]
    source: str

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class RankerData:
    train: list[Group]
    val: list[Group]
    info: dict[str, str | int] = field(default_factory=dict)

    @property
    def train_pairs(self) -> int:
        return sum(len(g) for g in self.train)


def split_of(query: str) -> Literal["train", "val"]:
    digest = hashlib.sha256((SPLIT_SALT + query.strip().lower()).encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") % 100 < VAL_PERCENT else "train"


def default_homedepot_dir() -> Path | None:
    """$SHOPRAY_HOMEDEPOT, else ../shared/data/homedepot beside the repo root or the working directory."""
    candidates = [os.environ.get("SHOPRAY_HOMEDEPOT"), CHECKOUT / "../shared/data/homedepot", Path.cwd() / "../shared/data/homedepot"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "judgments_dev.csv").exists():
            return Path(candidate).resolve()
    return None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_titles(catalog: Path) -> dict[str, str]:
    titles = {}
    with catalog.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            titles[str(row["product_id"])] = row["title"]
    return titles


def judgment_groups(judgments: Judgments, titles: dict[str, str], source: str, top: float = 2.0) -> list[Group]:
    """Labels are gain / top: Home Depot grades 1-3 become 0, 0.5 (grade 2) and 1."""
    groups = []
    for query, gains in sorted(judgments.items()):
        ids = [pid for pid in sorted(gains) if pid in titles]
        if ids:
            groups.append(Group(query, ids, [titles[p] for p in ids], [gains[p] / top for p in ids], source))
    return groups


def homedepot_split(data_dir: Path) -> tuple[Judgments, Judgments, dict[str, str]]:
    """(train judgments, validation judgments, product titles)."""
    judgments = load_judgments(data_dir / "judgments_dev.csv")
    train = {q: g for q, g in judgments.items() if split_of(q) == "train"}
    val = {q: g for q, g in judgments.items() if split_of(q) == "val"}
    return train, val, load_titles(data_dir / "catalog.jsonl")


def add_random_negatives(groups: list[Group], titles: dict[str, str], per_group: int, rng: random.Random) -> None:
    """A random catalog product is almost surely irrelevant: teaches the low end judged lists lack."""
    pool = sorted(titles)
    for group in groups:
        for _ in range(per_group):
            pid = rng.choice(pool)
            if pid not in group.ids:
                group.ids.append(pid)
                group.texts.append(titles[pid])
                group.labels.append(0.0)


def add_retrieved_negatives(groups: list[Group], titles: dict[str, str], retrieve: Callable[[str], list[str]], per_group: int, skip: int,
                            rng: random.Random) -> None:
    """What the retriever ranks high for a query but nobody judged, labelled 0: the near-misses the ranker will
    actually be shown. The first ``skip`` are left out: judgments are sparse, and the very top is as likely relevant."""
    for group in groups:
        pool = [pid for pid in retrieve(group.query)[skip:] if pid not in group.ids and pid in titles]
        for pid in rng.sample(pool, min(per_group, len(pool))):
            group.ids.append(pid)
            group.texts.append(titles[pid])
            group.labels.append(0.0)


def distil(groups: list[Group], teacher) -> None:
    """Each label becomes the teacher's logit for the pair (``teacher.logits``, a ``CrossEncoderScorer``'s): a
    student regressed on them learns the teacher's graded view of every pair, also of the near-misses
    judgments leave at 0, and its order among products it is sure of (where sigmoid scores all read 1)."""
    logits = teacher.logits([g.query for g in groups for _ in g.texts], [t for g in groups for t in g.texts])
    start = 0
    for g in groups:
        g.labels = [float(x) for x in logits[start : start + len(g)]]
        start += len(g)


def synthetic_groups(n_queries: int, seed: int, catalog_size: int = 6000, per_query: int = 6, products: list[Product] | None = None) -> list[Group]:
    """Queries composed from catalog facets, with products graded by how well they match.

    Same leaf category and every named facet: 1.0; same leaf, some facets
    wrong: between 0.5 and 1.0; same department: 0.1; anything else: 0.
    ``products`` is the catalog (it needs categories); default: a demo catalog of ``catalog_size``.
    """
    rng = random.Random(seed)
    products = [p for p in products if p.category] if products is not None else generate_demo_catalog(n=catalog_size, seed=seed)
    if not products:
        raise ValueError("synthetic ranker queries need a catalog with categories")
    by_leaf: dict[str, list] = {}
    for p in products:
        by_leaf.setdefault(p.category or "", []).append(p)
    groups = []
    for _ in range(n_queries):
        anchor = rng.choice(products)
        facets = {k: v for k, v in (("brand", anchor.brand), ("color", anchor.color), ("material", anchor.attributes.get("material"))) if v}
        named = dict(rng.sample(sorted(facets.items()), k=min(len(facets), rng.choice([0, 1, 1, 2]))))
        words = [named.get("color"), named.get("brand"), named.get("material"), (anchor.leaf_category or "").lower()]
        query = " ".join(w for w in words if w)
        if rng.random() < 0.5:
            query = query.lower()
        pool = [anchor] + rng.sample(by_leaf[anchor.category or ""], k=min(2, len(by_leaf[anchor.category or ""])))
        pool += rng.sample(products, k=per_query - len(pool))
        seen, ids, texts, labels = set(), [], [], []
        for p in pool:
            if p.product_id in seen:
                continue
            seen.add(p.product_id)
            ids.append(p.product_id)
            texts.append(p.title)
            labels.append(_synthetic_label(anchor, p, named))
        groups.append(Group(query, ids, texts, labels, "synthetic"))
    return groups


def _synthetic_label(anchor, product, named: dict[str, str]) -> float:
    if product.category == anchor.category:
        if not named:
            return 1.0
        values = {"brand": product.brand, "color": product.color, "material": product.attributes.get("material")}
        return 0.5 + 0.5 * sum(values[k] == v for k, v in named.items()) / len(named)
    same_department = (product.category or "").split(" > ")[0] == (anchor.category or "").split(" > ")[0]
    return 0.1 if same_department else 0.0


def load_ranker_data(
    homedepot: Path | None,
    *,
    synthetic_queries: int = 1500,
    negatives_per_query: int = 1,
    retrieve: Callable[[str], list[str]] | None = None,
    hard_negatives: int = 0,
    hard_skip: int = 5,
    max_train_queries: int | None = None,
    seed: int = 0,
    products: list[Product] | None = None,
) -> RankerData:
    """Home Depot (when given) split by query, plus synthetic groups for training.

    Without Home Depot data the synthetic groups are split by the same query hash,
    so training and validation still run end to end (tests, fresh machines).
    """
    rng = random.Random(seed)
    info: dict[str, str | int] = {"split": f"sha256('{SPLIT_SALT}' + lower(query)) % 100 < {VAL_PERCENT} -> validation", "seed": seed}
    synthetic = synthetic_groups(synthetic_queries, seed, products=products) if synthetic_queries else []
    if homedepot is None:
        train = [g for g in synthetic if split_of(g.query) == "train"]
        val = [g for g in synthetic if split_of(g.query) == "val"]
        info.update({"sources": "synthetic demo-catalog pairs" if products is None else "synthetic pairs from the given catalog"})
    else:
        train_j, val_j, titles = homedepot_split(homedepot)
        train = judgment_groups(train_j, titles, "homedepot")
        rng.shuffle(train)
        if max_train_queries:
            train = train[:max_train_queries]
        add_random_negatives(train, titles, negatives_per_query, rng)
        if retrieve is not None and hard_negatives:
            add_retrieved_negatives(train, titles, retrieve, hard_negatives, hard_skip, rng)
        val = judgment_groups(val_j, titles, "homedepot")
        info.update(
            {
                "sources": "homedepot judgments_dev.csv (graded 1-3, label=(r-1)/2) + random catalog negatives (label 0) + synthetic demo-catalog pairs",
                "homedepot_judgments_sha256": file_sha256(homedepot / "judgments_dev.csv"),
                "homedepot_train_queries": len(train),
                "homedepot_val_queries": len(val),
                "random_negatives_per_query": negatives_per_query,
                "retrieved_negatives_per_query": hard_negatives if retrieve is not None else 0,
            }
        )
        train = train + synthetic
    rng.shuffle(train)
    info.update({"train_groups": len(train), "train_pairs": sum(len(g) for g in train), "val_groups": len(val), "val_pairs": sum(len(g) for g in val), "synthetic_queries": synthetic_queries})
    return RankerData(train=train, val=val, info=info)
