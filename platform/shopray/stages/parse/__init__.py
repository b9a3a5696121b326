"""Stage 1, parse: free text -> a typed Intent (rules always, an LLM served by vLLM when configured)."""
