"""What parser training needs before the model exists: its settings, synthetic examples, tokenizer and encoded rows."""

from __future__ import annotations

from dataclasses import dataclass

from shopray.catalog import load_products
from shopray.domain import Vocabulary
from shopray.stages.parse.candidates import CandidateFinder
from shopray.stages.parse.prompt import messages, normalize_query, user_turn
from shopray.stages.parse.schema import target_json
from shopray.training.parser.model import TinyQwenSpec
from shopray.training.parser.synth import generate
from shopray.training.parser.tokenizer import IM_END, add_value_tokens, hf_tokenizer, train_bpe


@dataclass
class TrainArgs:
    catalog: str = "demo"
    examples: int = 30000
    heldout: int = 1000
    steps: int = 1200
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 60
    seed: int = 0
    vocab_size: int = 4096
    hidden_size: int = 192
    layers: int = 3
    heads: int = 6
    kv_heads: int = 2
    intermediate_size: int = 512
    registry: str | None = None
    alias: str | None = "candidate"
    promote: bool = True
    evaluate: bool = True
    threads: int | None = None
    progress: bool = True
    tie_values: bool = True


def build_tokenizer(products, vocabulary, queries: list[str], targets: list[str], vocab_size: int, max_len: int):
    corpus = [p.title for p in products] + queries + targets
    tok = train_bpe(corpus, vocab_size)
    add_value_tokens(tok, [*vocabulary.brands, *vocabulary.categories, *vocabulary.colors, *vocabulary.attributes])
    return hf_tokenizer(tok, max_len)


def encode(tokenizer, queries: list[str], targets: list[str], hints: list[str] | None = None) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per example; the loss covers only the answer."""
    hints = hints or [""] * len(queries)
    prompts = tokenizer.apply_chat_template([messages(q, hint=h) for q, h in zip(queries, hints)], tokenize=True, add_generation_prompt=True)
    prompts = prompts["input_ids"] if hasattr(prompts, "keys") else prompts
    answers = tokenizer(targets, add_special_tokens=False)["input_ids"]
    end = tokenizer.convert_tokens_to_ids(IM_END)
    return [(list(p) + list(a) + [end], len(p)) for p, a in zip(prompts, answers)]


@dataclass
class ParserData:
    """Everything training needs before the model exists: catalog, examples, tokenizer, encoded rows."""

    products: list
    vocabulary: object
    train_set: list
    heldout: list
    tokenizer: object
    rows: list
    spec: object


def prepare(args: TrainArgs, products: list | None = None) -> ParserData:
    """Synthetic examples, BPE tokenizer and encoded rows; deterministic for given args (a resumed trial rebuilds them)."""
    if products is None:
        products = load_products(args.catalog).products
    vocabulary = Vocabulary.from_products(products)
    train_set = generate(products, vocabulary, args.examples, "train", args.seed)
    heldout = generate(products, vocabulary, args.heldout, "heldout", args.seed + 1, exclude={e.query for e in train_set})
    queries = [normalize_query(e.query) for e in train_set]
    targets = [target_json(e.intent, e.cheap) for e in train_set]
    finder = CandidateFinder(vocabulary)
    hints = [finder.hint(q) for q in queries]
    spec = TinyQwenSpec(hidden_size=args.hidden_size, layers=args.layers, heads=args.heads, kv_heads=args.kv_heads, intermediate_size=args.intermediate_size)
    tokenizer = build_tokenizer(products, vocabulary, [user_turn(q, h) for q, h in zip(queries, hints)], targets, args.vocab_size, spec.max_positions)
    rows = encode(tokenizer, queries, targets, hints)
    return ParserData(products, vocabulary, train_set, heldout, tokenizer, rows, spec)
