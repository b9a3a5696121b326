"""`shopray train {ranker,parser,embedder,fusion}`: each trainer module owns its arguments."""

from __future__ import annotations

import importlib
import sys

TRAINERS = {"ranker": "shopray.training.ranker.train", "parser": "shopray.training.parser.train", "embedder": "shopray.training.embedder.train",
            "fusion": "shopray.training.fusion.train"}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TRAINERS:
        print(f"usage: shopray train {{{','.join(TRAINERS)}}} [options]", file=sys.stderr)
        return 2
    return importlib.import_module(TRAINERS[argv[0]]).main(argv[1:])
