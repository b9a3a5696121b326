"""parser-finetune trials: shopray.training.parser.train's data and loop, reporting held-out field F1 to Tune.

At each report the model decodes the held-out queries greedily with
transformers (no grammar); the answer must be valid against the catalog
schema or it counts as an empty intent. That is a lower bound of the served
score (vLLM + xgrammar can only emit valid values); the winner is scored
through vLLM before it is registered (``winner.full_eval``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import torch
from ray import tune

from shopray.catalog import load_products
from shopray.catalog.demo import DEFAULT_SEED, generate_demo_catalog
from shopray.config import PARSER_SIZES
from shopray.domain import Intent
from shopray.stages.parse.candidates import CandidateFinder
from shopray.stages.parse.prompt import messages, normalize_query
from shopray.stages.parse.rules import RuleParser
from shopray.stages.parse.schema import InvalidOutput, intent_schema, to_intent, validate
from shopray.training.parser.data import TrainArgs, prepare
from shopray.training.parser.eval import exact_match, field_scores
from shopray.training.parser.loop import train_model
from shopray.training.parser.model import save
from shopray.training.parser.tokenizer import IM_END
from shopray.training.parser.train import build
from shopray.tuning.dotted import apply_dotted
from shopray.tuning.trials import ParserTrialSettings, threads_for


def train_args(s: ParserTrialSettings, threads: int):

    return TrainArgs(
        catalog=s.catalog, examples=s.examples, heldout=s.heldout, steps=s.steps, batch_size=s.batch_size, lr=s.lr, warmup=s.warmup,
        seed=s.seed, vocab_size=s.vocab_size, threads=threads, progress=False, alias=None, promote=False, **PARSER_SIZES[s.model_size],
    )


def products_for(s: ParserTrialSettings):
    if s.catalog == "demo":

        return generate_demo_catalog(n=s.demo_size, seed=DEFAULT_SEED if s.demo_seed is None else s.demo_seed)

    return load_products(s.catalog).products


def greedy_field_f1(model, tokenizer, vocabulary, heldout, batch_size: int = 64, max_new_tokens: int = 64) -> dict:
    """Held-out macro field F1 and exact match with plain greedy decoding (see the module doc)."""


    schema = intent_schema(vocabulary)
    finder = CandidateFinder(vocabulary)
    rule = RuleParser(vocabulary)
    end, pad = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.pad_token_id
    pairs = []
    for start in range(0, len(heldout), batch_size):
        chunk = heldout[start : start + batch_size]
        norms = [normalize_query(ex.query) for ex in chunk]
        prompts = tokenizer.apply_chat_template([messages(q, hint=finder.hint(q)) for q in norms], tokenize=True, add_generation_prompt=True)
        prompts = prompts["input_ids"] if hasattr(prompts, "keys") else prompts
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: generation continues every row at the same position
            ids[i, width - len(p) :] = torch.tensor(list(p))
            mask[i, width - len(p) :] = 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=end, pad_token_id=pad)
        for ex, q, row in zip(chunk, norms, out[:, width:].tolist()):
            text = tokenizer.decode([t for t in row if t not in (end, pad)], skip_special_tokens=True)
            keywords = rule.parse(ex.query).keywords
            try:
                predicted = to_intent(validate(text, schema), keywords, vocabulary)
            except (InvalidOutput, ValueError, TypeError):
                predicted = Intent(keywords=keywords, source="none")
            pairs.append((predicted, ex.intent))
    return {"macro_f1": field_scores(pairs)["macro_f1"]["f1"], "exact": exact_match(pairs)}


def parser_trial(config: dict, fixed: dict, cpu: float = 1.0) -> None:


    s = ParserTrialSettings.model_validate(apply_dotted(fixed, config))
    threads = threads_for(cpu)
    torch.set_num_threads(threads)
    args = train_args(s, threads)
    data = prepare(args, products_for(s))
    model, tying = build(args, data)
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(Path(d) / "trainer.pt", weights_only=False)
        model.load_state_dict(state.pop("model"))
        resume = state
    planned = -(-s.steps // s.eval_every)
    digest = hashlib.sha256("\n".join(f"{e.query}\t{e.intent.model_dump_json()}" for e in data.train_set).encode()).hexdigest()
    data_info = {"catalog": s.catalog, "products": len(data.products), "train_examples": len(data.train_set), "heldout_examples": len(data.heldout), "train_sha256": digest}

    def on_eval(step: int, loss: float, state: dict) -> bool:
        # Decode with the effective (tied) output rows, then put the raw ones back to keep training.
        raw = model.lm_head.weight.detach().clone()
        if tying is not None:
            tying.merge(model.lm_head.weight)
        scores = greedy_field_f1(model, data.tokenizer, data.vocabulary, data.heldout)
        with tempfile.TemporaryDirectory(prefix="ckpt-") as tmp:
            save(model, data.tokenizer, Path(tmp) / "model")  # servable as is (vLLM)
            with torch.no_grad():
                model.lm_head.weight.copy_(raw)
            torch.save({**state, "model": model.state_dict()}, Path(tmp) / "trainer.pt")
            (Path(tmp) / "meta.json").write_text(json.dumps({"step": step, "data": data_info, "settings": s.model_dump(mode="json"), "scores": scores}))
            tune.report(
                {"val_field_f1": scores["macro_f1"], "val_exact": scores["exact"], "loss": loss, "step": step, "planned_reports": planned,
                 "parameters": sum(p.numel() for p in model.parameters())},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )
        return False

    train_model(model, data.rows, args, data.tokenizer.pad_token_id, tying, on_eval=on_eval, eval_every=s.eval_every, resume=resume)
