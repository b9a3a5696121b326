"""Stage 3, rank: a cross-encoder (or the bi-encoder) re-scores the top N, fused with the retriever's order."""
