"""Training the query parser: synthetic queries from the catalog, a BPE tokenizer, a small Qwen2, its evaluation."""
