"""Stage 2, retrieve: hybrid dense + BM25 retrieval from a versioned Qdrant index (embedded engine or server), and the ingestion that builds it."""
