"""Search-box suggestions for ``GET /suggest?q=``: completions from the catalog's phrases and shoppers' popular queries.

    suggester = Suggester.from_products(products, SuggestConfig())
    suggester.update_queries([("running shoes", 120), ...])  # from events; rare queries stay out
    suggester.suggest("nik runn")  # [Suggestion(text="nike running shoes", kind="category", ...), ...]
"""

from shopray.suggest.index import MAX_QUERY_CHARS, Suggester, Suggestion

__all__ = ["MAX_QUERY_CHARS", "Suggester", "Suggestion"]
