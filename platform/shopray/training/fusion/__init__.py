"""`shopray train fusion`: fit the learned fusion (LambdaMART) over the ranker's head for one cross-encoder."""
