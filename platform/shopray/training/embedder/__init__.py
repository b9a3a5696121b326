"""`shopray train embedder`: fine-tune the retriever's two-tower encoder on a shop's judged queries."""
