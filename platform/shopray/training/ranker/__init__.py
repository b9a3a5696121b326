"""Training the ranker: a cross-encoder fine-tuned from MiniLM on judged queries and synthetic pairs."""
