"""The HTTP contract: request and response bodies of POST /search."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from shopray.domain import Constraint, Intent, OutOfStock
from shopray.privacy import pseudonymous

ProductId = str
SessionId = Annotated[str, AfterValidator(pseudonymous)]


class SessionSignal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clicked: list[str] = Field(default_factory=list, max_length=1000, description="Product ids the shopper clicked, most recent last; unknown ids are ignored.")

    @field_validator("clicked")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for pid in v:
            if not 1 <= len(pid) <= 128:
                raise ValueError("each clicked product id must be 1-128 characters")
        return v[-50:]  # only the recent past says anything about intent


class Filters(BaseModel):
    """Hard constraints from the client; they are never relaxed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    brand: str | None = Field(default=None, max_length=128, description="Exact brand.")
    category: str | None = Field(default=None, max_length=256, description="Exact category path.")
    color: str | None = Field(default=None, max_length=64, description="Exact color.")
    price_min: float | None = Field(default=None, ge=0, le=1e9, description="Inclusive lower price bound.")
    price_max: float | None = Field(default=None, ge=0, le=1e9, description="Inclusive upper price bound.")

    @model_validator(mode="after")
    def _ordered(self) -> "Filters":
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError("price_min must not exceed price_max")
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    query: str = Field(min_length=1, max_length=512, description="Free-text query.")
    k: int = Field(default=10, ge=1, le=100, description="Results to return.")
    diversity: float | None = Field(default=None, ge=0, le=1, description="0 keeps the ranker's order; 1 is most diverse. Default from config.")
    session: SessionSignal | None = Field(default=None, description="Real-time session signal.")
    session_id: SessionId | None = Field(default=None, description="The shopper's pseudonymous session: its recent products from POST /events "
                                         "pull results toward them, as `session.clicked` does (both may be given).")
    filters: Filters | None = Field(default=None, description="Hard filters.")
    ignore_intent: list[Literal["brand", "category", "color", "price", "attributes"]] = Field(
        default_factory=list, max_length=5, description="Parsed intent fields to drop, e.g. after a shopper removes a chip."
    )
    strict: bool = Field(default=False, description="Only products that keep every constraint the query states; by default, when exact matches run short, "
                         "near misses follow them, one relaxed constraint at a time.")
    out_of_stock: OutOfStock | None = Field(default=None, description="Products out of stock: hide, sink below those in stock, or show. Default from config "
                                            "(retriever.out_of_stock).")
    facets: bool = Field(default=False, description="Also count the result set's brands, categories, colors and price bands (`facets` in the response).")
    explain: bool = Field(default=False, description="Say for each result how it got its place (`explanation`): its dense and BM25 ranks, fusion, "
                          "the scorer's score, its move in diversification, and the filters that applied. Costs two more index queries.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        cleaned = "".join(ch if ch.isprintable() else " " for ch in v).strip()
        if not cleaned:
            raise ValueError("query must contain visible characters")
        return cleaned


class FacetCount(BaseModel):
    value: str = Field(description="A brand, category path or color; filter on it with the same field of `filters`.")
    count: int = Field(description="Results with this value.")


class PriceBand(BaseModel):
    price_min: float | None = Field(description="Lower edge (inclusive); null: no lower bound. Filter with `filters.price_min`.")
    price_max: float | None = Field(description="Upper edge (results counted are below it); null: no upper bound. Filter with `filters.price_max`.")
    count: int = Field(description="Results in the band.")


class Facets(BaseModel):
    """Counts over the query's result set: every candidate the filters admit, not only the page returned."""

    brand: list[FacetCount] = Field(default_factory=list, description="Commonest brands first.")
    category: list[FacetCount] = Field(default_factory=list, description="Commonest category paths first.")
    color: list[FacetCount] = Field(default_factory=list, description="Commonest colors first.")
    price: list[PriceBand] = Field(default_factory=list, description="Contiguous price bands, cheapest first, split at rounded quantiles.")


class Explanation(BaseModel):
    """How one result got its place, stage by stage (``explain: true``); a field is null where that stage did not run or
    the result was not in its list."""

    dense_rank: int | None = Field(default=None, description="1-based rank in the dense (MiniLM) list the retriever fused; null: not in it.")
    bm25_rank: int | None = Field(default=None, description="1-based rank in the BM25 list the retriever fused; null: not in it.")
    fused: float | None = Field(default=None, description="The retriever's weighted RRF score of the two lists.")
    tier: int = Field(default=0, description="Constraint tier: 0 keeps every stated constraint; each further tier gives up one more (`relaxed`).")
    filters: dict[str, object] = Field(default_factory=dict, description="The hard filters every result passed: the client's, and in-stock when out-of-stock products are hidden.")
    session_pull: float | None = Field(default=None, description="How far the session's products pulled the query vector toward this product (weight x cosine); null without a session.")
    retriever_rank: int | None = Field(default=None, description="1-based rank in the retriever's order, which the ranker re-orders.")
    scorer: float | None = Field(default=None, description="The scorer's own score (the cross-encoder's logit, or the bi-encoder's cosine); null: below ranker.top_n, not scored.")
    session_affinity: float | None = Field(default=None, description="Cosine to the session's products, a ranking feature (ranker.session_weight); null without a session or unscored.")
    popularity: float | None = Field(default=None, description="Popularity from shoppers' events, 0..1 (log scale), a ranking feature (ranker.popularity_weight); "
                                     "null when no scored product has events, or unscored.")
    ranked: float | None = Field(default=None, description="The ranker's final score: the fusion of the scorer's and the retriever's orders plus the weighted "
                                 "behaviour features (ranker.*_weight).")
    rank_before_diversity: int | None = Field(default=None, description="1-based rank before the diversifier chose the page.")
    rank: int | None = Field(default=None, description="1-based rank shown.")


class SearchResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: str
    title: str
    score: float = Field(description="The ranker's score: higher is better, comparable only within one response and one constraint tier "
                         "(a rank fusion by default, see ranker.retriever_weight).")
    meets: list[Constraint] | None = Field(default=None, description="Which of the query's stated constraints (`relaxed` lists those some result gives up) "
                                           "this product keeps; absent when the query states none.")
    explanation: Explanation | None = Field(default=None, description="How it got its place, when the request asks to `explain`.")


class SearchResponse(BaseModel):
    request_id: str = Field(description="Id of this request; also the X-Request-ID header.")
    intent: Intent = Field(description="How the query was understood.")
    results: list[SearchResult] = Field(description="Ranked, diversified products, best first: those that keep every stated constraint, then each relaxation tier.")
    stated: list[Constraint] = Field(default_factory=list, description="The constraints the query states (its parsed brand, category, color "
                                     "and price, less what the client's filters fix), in the order they are given up when exact matches run short.")
    relaxed: list[Constraint] = Field(default_factory=list, description="Stated constraints that some results give up because exact matches ran short, "
                                      "in the order they were given up; empty when every result keeps them all.")
    degraded: list[str] = Field(default_factory=list, description="Fallbacks taken while answering; empty when every stage answered normally.")
    timings_ms: dict[str, float] = Field(description="Per-stage wall time: parse, retrieve, rank, diversify, total.")
    versions: dict[str, str] = Field(default_factory=dict, description="Index and model versions that answered.")
    facets: Facets | None = Field(default=None, description="The result set's counts, when the request asks for `facets`.")
    searched_as: str | None = Field(default=None, description="The query text every model searched with after query repair (`retriever.spelling`), "
                                    "for a \"showing results for\" line; null when repair changed nothing.")


class CatalogChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[dict[str, object]] = Field(min_length=1, max_length=100_000, description='One batch, applied all or nothing: {"product_id": ..., '
                                             '<fields to set>} or {"product_id": ..., "delete": true}; a rejection names the 1-based line.')


RecommendMode = Literal["similar", "for_you", "bought_together", "popular"]


class RecommendRequest(BaseModel):
    """POST /recommend. ``similar`` needs a product; ``for_you`` a session; ``bought_together`` a product or a session (its
    recent products); ``popular`` neither. A session's purchases are never recommended back to it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: RecommendMode = Field(description="similar: like a product; for_you: from a session's events; bought_together: "
                                "co-occurrence in carts and purchases; popular: the cold-start answer.")
    product_id: str | None = Field(default=None, min_length=1, max_length=128, description="The product to recommend from (similar, bought_together).")
    session_id: SessionId | None = Field(default=None, description="The shopper's pseudonymous session (for_you, bought_together).")
    k: int = Field(default=10, ge=1, le=100, description="Results to return.")
    diversity: float | None = Field(default=None, ge=0, le=1, description="0 keeps the model's order; 1 is most diverse. Default from config.")
    filters: Filters | None = Field(default=None, description="Hard filters.")
    out_of_stock: Literal["hide", "show"] | None = Field(default=None, description="Products out of stock: hide or show. Default from config "
                                                         "(retriever.out_of_stock; sink hides them here).")

    @model_validator(mode="after")
    def _enough(self) -> "RecommendRequest":
        needs = {"similar": self.product_id, "for_you": self.session_id, "bought_together": self.product_id or self.session_id}
        if self.mode in needs and not needs[self.mode]:
            what = {"similar": "product_id", "for_you": "session_id", "bought_together": "product_id or session_id"}[self.mode]
            raise ValueError(f"mode {self.mode} needs {what}")
        return self


class RecommendResponse(BaseModel):
    request_id: str = Field(description="Id of this request; also the X-Request-ID header.")
    mode: RecommendMode = Field(description="The mode asked for.")
    model: str = Field(description="What answered: qdrant-recommend (vector recommend query), co-occurrence, or popularity.")
    fallback: str | None = Field(default=None, description="Why another model answered than the mode's own, e.g. no_history (a session "
                                 "without events gets popular products); null when the mode's own model answered.")
    based_on: list[str] = Field(default_factory=list, description="The product ids the recommendation was made from; empty for popularity.")
    results: list[SearchResult] = Field(description="Recommended products, best first, diversified.")
    timings_ms: dict[str, float] = Field(description="Wall time: total.")
    versions: dict[str, str] = Field(default_factory=dict, description="The index version (and last catalog change) that answered.")
