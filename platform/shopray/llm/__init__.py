"""The LLM query parser: schema from the catalog, synthetic data, a tiny Qwen2, vLLM serving.

Nothing here is imported by the rule-parser path, so a graph that serves
``parser.kind: rule`` never loads torch or vLLM for stage 1.
"""
