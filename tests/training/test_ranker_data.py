"""The cross-encoder's hard negatives come from what the retriever returns, never from the judged or the very top."""

import random

from shopray.training.ranker.data import Group, add_retrieved_negatives


def test_retrieved_negatives_are_unjudged_below_the_skipped_top_and_labelled_zero():
    group = Group("anchor bolt", ["a", "b"], ["Anchor bolt", "Wedge anchor"], [1.0, 0.5], "homedepot")
    titles = {pid: pid.upper() for pid in "abcdefg"}
    retrieved = {"anchor bolt": ["c", "a", "d", "b", "e", "zz", "f"]}
    add_retrieved_negatives([group], titles, retrieved.__getitem__, per_group=2, skip=2, rng=random.Random(0))
    added = group.ids[2:]
    assert len(added) == 2 and set(added) <= {"d", "e", "f"}  # "c" is in the skipped top, "zz" is not in the catalog
    assert group.labels[2:] == [0.0, 0.0] and group.texts[2:] == [titles[p] for p in added]
