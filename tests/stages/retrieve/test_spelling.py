"""Query repair: typos become catalog words for every model; words the catalog uses, short words and codes stay."""

import numpy as np

from shopray.domain import Intent
from shopray.stages.retrieve.spelling import Speller, term_counts


def test_term_counts_count_products_not_occurrences():
    assert term_counts(["Anchor anchor bolt", "anchor 2x4", "a"]) == {"anchor": 2, "bolt": 1}


def test_a_typo_becomes_the_most_used_catalog_word_within_reach():
    speller = Speller({"anchor": 50, "ancho": 2, "bolts": 40, "dishwasher": 30, "drill": 9, "grill": 20})
    assert speller.correct("ancor bolts") == "anchor bolts"           # one insertion; "ancho" is nearer in letters but rarer
    assert speller.correct("stainless dishwaser") == "stainless dishwasher"  # "stainless" is unknown and has no near word
    assert speller.correct("dishwsaher") == "dishwasher"              # two edits: allowed from 8 letters
    assert speller.correct("anhcro") == "anhcro"                      # two edits in a short word: left alone


def test_a_common_english_word_the_catalog_lacks_is_not_a_typo():
    speller = Speller({"speakers": 40, "shoes": 90})
    assert speller.correct("sneakers") == "sneakers"
    assert speller.correct("speakrs") == "speakers"


def test_known_words_short_words_and_codes_are_left_alone():
    speller = Speller({"drill": 9, "grill": 20, "kit": 4})
    assert speller.correct("drill") == "drill"  # known, though "grill" is more common and one edit away
    assert speller.correct("gril m19 2x4 kt") == "grill m19 2x4 kt"  # codes and words under 4 letters stay as typed
    assert Speller({"grill": 1}).correct("gril") == "gril"  # a word in a single product is not a correction target


def test_the_retriever_repairs_the_bm25_query(app_config, small_catalog):
    from shopray.config import RetrieverConfig
    from shopray.stages.retrieve.stage import Retriever

    retriever = Retriever.from_config(app_config)
    reader = retriever.index.current
    word = max((w for w in reader.manifest.terms if len(w) >= 8 and w.isalpha()), key=lambda w: reader.manifest.terms[w])
    typo = word[:3] + word[4:]  # one letter dropped
    assert reader.speller.correct(typo) == word
    lexical = Retriever(retriever.index, retriever.embedder, RetrieverConfig(dense_weight=0.0, candidates=20), app_config.index.hnsw_ef)
    as_typed = Retriever(retriever.index, retriever.embedder, RetrieverConfig(dense_weight=0.0, candidates=20, spelling=False), app_config.index.hnsw_ef)
    repaired = lexical.retrieve(typo, Intent(keywords=typo))
    assert lexical.retrieve(word, Intent(keywords=word)).ids == repaired.ids
    assert as_typed.retrieve(typo, Intent(keywords=typo)).ids != repaired.ids
    assert (repaired.query_text, repaired.repaired) == (word, True)
    # The dense side reads the repaired text as well: a typo finds what the word finds.
    dense = Retriever(retriever.index, retriever.embedder, RetrieverConfig(sparse_weight=0.0, candidates=20), app_config.index.hnsw_ef)
    assert dense.retrieve(typo, Intent(keywords=typo)).ids == dense.retrieve(word, Intent(keywords=word)).ids
    np.testing.assert_allclose(dense.retrieve(typo, Intent(keywords=typo)).query_vector, retriever.embedder.encode([word])[0], atol=1e-6)


def test_the_ranker_scores_the_repaired_query_and_the_response_says_it(app_config, small_catalog):
    from shopray.api import SearchRequest
    from shopray.pipeline import Pipeline

    pipeline = Pipeline.from_config(app_config)
    reader = pipeline["retrieve"].index.current
    word = max((w for w in reader.manifest.terms if len(w) >= 8 and w.isalpha()), key=lambda w: reader.manifest.terms[w])
    typo = word[:3] + word[4:]
    seen: list[str] = []
    scorer = pipeline["rank"].scorer
    score_many = scorer.score_many
    scorer.score_many = lambda requests: seen.extend(q for q, _ in requests) or score_many(requests)
    response = pipeline.search(SearchRequest(query=typo, k=5, diversity=0))
    assert response.searched_as == word and seen == [word]
    assert [r.product_id for r in response.results] == [r.product_id for r in pipeline.search(SearchRequest(query=word, k=5, diversity=0)).results]
    assert pipeline.search(SearchRequest(query=word, k=5, diversity=0)).searched_as is None
