"""Field-level precision, recall and F1 of parsed intents against synthetic truth.

Per field, over all examples: a true positive is a predicted value equal to
the truth; a predicted value that differs from the truth (or where the truth
is empty) is a false positive; a true value not predicted exactly is a false
negative. So a wrong brand costs both precision and recall. "price" pools the
two bounds (equal within a cent); "attributes" compares sets of values.
"""

from __future__ import annotations

from collections.abc import Iterable

from shopray.domain import Intent

FIELDS = ("brand", "category", "color", "price", "attributes")
CORE = ("brand", "category", "color", "price")  # the fields macro F1 and exact match are over


def slots(intent: Intent, field: str) -> set:
    """One field of an intent as a set of comparable values."""
    if field == "price":
        return {(name, round(v, 2)) for name, v in (("min", intent.price_min), ("max", intent.price_max)) if v is not None}
    if field == "attributes":
        return set(intent.attributes)
    value = getattr(intent, field)
    return {value} if value is not None else set()


def field_scores(pairs: Iterable[tuple[Intent, Intent]]) -> dict[str, dict[str, float]]:
    """(predicted, truth) pairs -> {field: {precision, recall, f1, tp, fp, fn}}."""
    counts = {f: [0, 0, 0] for f in FIELDS}
    for predicted, truth in pairs:
        for f in FIELDS:
            p, t = slots(predicted, f), slots(truth, f)
            counts[f][0] += len(p & t)
            counts[f][1] += len(p - t)
            counts[f][2] += len(t - p)
    out: dict[str, dict[str, float]] = {}
    for f, (tp, fp, fn) in counts.items():
        # Nothing predicted scores 0 precision unless there was nothing to find.
        precision = tp / (tp + fp) if tp + fp else float(tp + fn == 0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[f] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}
    core = [out[f]["f1"] for f in CORE]
    out["macro_f1"] = {"f1": round(sum(core) / len(core), 4)}
    return out


def wrong_fields(predicted: Intent, truth: Intent) -> list[str]:
    """The core fields a parse got wrong."""
    return [f for f in CORE if slots(predicted, f) != slots(truth, f)]


def exact_match(pairs: Iterable[tuple[Intent, Intent]]) -> float:
    """Share of queries whose brand, category, color and price bounds are all right."""
    pairs = list(pairs)
    ok = sum(not wrong_fields(p, t) for p, t in pairs)
    return round(ok / len(pairs), 4) if pairs else 0.0


def format_table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """{parser name: field_scores(...)} -> a plain-text table."""
    lines = [f"{'field':<11}" + "".join(f"{name + ' P':>10}{'R':>8}{'F1':>8}" for name in results)]
    for f in FIELDS:
        row = f"{f:<11}"
        for scores in results.values():
            s = scores[f]
            row += f"{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>8.3f}"
        lines.append(row)
    lines.append(f"{'macro F1':<11}" + "".join(f"{'':>10}{'':>8}{s['macro_f1']['f1']:>8.3f}" for s in results.values()))
    return "\n".join(lines)
