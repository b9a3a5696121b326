"""The bi-encoder scorer reuses the retriever's query embedding instead of embedding the query again."""

import numpy as np

from shopray.domain import CandidateSet
from shopray.stages.rank.scorers import BiEncoderScorer


def test_the_bi_encoder_embeds_only_queries_the_retriever_did_not(embedder, monkeypatch):
    titles = ["Ninja Professional Blender", "Yoga Mat", "Cordless Drill"]
    products = embedder.encode(titles)
    query = embedder.encode(["blender"])[0]
    calls = []
    encode = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts: calls.append(list(texts)) or encode(texts))
    scorer = BiEncoderScorer(embedder)
    carried = CandidateSet(ids=list("abc"), payloads=[{}] * 3, scores=np.zeros(3), embeddings=products, query_vector=query)
    bare = CandidateSet(ids=list("abc"), payloads=[{}] * 3, scores=np.zeros(3), embeddings=products)
    with_vector, without = scorer.score_many([("blender", carried), ("blender", bare)])
    assert calls == [["blender"]]  # one encode, for the request without a vector
    np.testing.assert_allclose(with_vector, without, atol=1e-5)
    assert int(np.argmax(with_vector)) == 0
    scorer.score_many([("blender", carried)])
    assert calls == [["blender"]]
