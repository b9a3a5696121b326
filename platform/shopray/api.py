"""The HTTP contract: request and response bodies of POST /search."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopray.domain import Constraint, Intent, OutOfStock

ProductId = str


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
    filters: Filters | None = Field(default=None, description="Hard filters.")
    ignore_intent: list[Literal["brand", "category", "color", "price", "attributes"]] = Field(
        default_factory=list, max_length=5, description="Parsed intent fields to drop, e.g. after a shopper removes a chip."
    )
    strict: bool = Field(default=False, description="Only products that keep every constraint the query states; by default, when exact matches run short, "
                         "near misses follow them, one relaxed constraint at a time.")
    out_of_stock: OutOfStock | None = Field(default=None, description="Products out of stock: hide, sink below those in stock, or show. Default from config "
                                            "(retriever.out_of_stock).")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        cleaned = "".join(ch if ch.isprintable() else " " for ch in v).strip()
        if not cleaned:
            raise ValueError("query must contain visible characters")
        return cleaned


class SearchResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    product_id: str
    title: str
    score: float = Field(description="The ranker's score: higher is better, comparable only within one response and one constraint tier "
                         "(a rank fusion by default, see ranker.retriever_weight).")
    meets: list[Constraint] | None = Field(default=None, description="Which of the query's stated constraints (`relaxed` lists those some result gives up) "
                                           "this product keeps; absent when the query states none.")


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


class CatalogChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[dict[str, object]] = Field(min_length=1, max_length=100_000, description='One batch, applied all or nothing: {"product_id": ..., '
                                             '<fields to set>} or {"product_id": ..., "delete": true}; a rejection names the 1-based line.')
