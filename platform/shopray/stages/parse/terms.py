"""What both parsers derive from one index version's vocabulary, swapped as a unit when the index changes."""

from __future__ import annotations

from dataclasses import dataclass, field

from shopray.domain import Vocabulary
from shopray.stages.parse.candidates import CandidateFinder
from shopray.stages.parse.prompt import few_shot_examples
from shopray.stages.parse.rules import RuleParser
from shopray.stages.parse.schema import intent_schema


@dataclass(frozen=True)
class CatalogTerms:
    version: str
    vocabulary: Vocabulary
    catalog_sha256: str
    rules: RuleParser
    schema: dict
    finder: CandidateFinder
    _few_shot: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, version: str, vocabulary: Vocabulary, catalog_sha256: str = "") -> "CatalogTerms":
        """The terms of one index version; ``catalog_sha256`` (its manifest's) keys the parser trained for it."""
        return cls(version, vocabulary, catalog_sha256, RuleParser(vocabulary), intent_schema(vocabulary), CandidateFinder(vocabulary))

    def few_shot(self, n: int) -> tuple[tuple[str, str], ...]:
        """Example turns for a model that is not a trained shopray parser; built on first use."""
        if n not in self._few_shot:
            self._few_shot[n] = tuple(few_shot_examples(self.vocabulary, n))
        return self._few_shot[n]
