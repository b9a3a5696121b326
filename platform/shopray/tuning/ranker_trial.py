"""ranker-finetune trials: shopray.training.ranker.train.Fit, reporting validation NDCG@10 to Tune.

Each report is one Tune iteration (ASHA's time unit) and carries a checkpoint:
the model directory plus the step and schedule state, so a retried or resumed
trial continues from its last report. Adam's moments are not checkpointed (they
would triple the checkpoint to ~270 MB); a resumed trial rebuilds them.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import tempfile
from pathlib import Path

import torch
from ray import tune
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from shopray.stages.rank.cross_encoder import CrossEncoderScorer
from shopray.training.ranker.data import default_homedepot_dir, load_ranker_data
from shopray.training.ranker.fit import Fit, init_cross_encoder, training_pairs, val_ndcg
from shopray.tuning.dotted import apply_dotted
from shopray.tuning.trials import RankerTrialSettings, threads_for


def load_data(s: RankerTrialSettings):

    homedepot = default_homedepot_dir() if s.homedepot in (None, True) else None
    if s.homedepot and homedepot is None:
        raise FileNotFoundError("homedepot: true but ../shared/data/homedepot was not found (set SHOPRAY_HOMEDEPOT)")
    data = load_ranker_data(homedepot, synthetic_queries=s.synthetic_queries, negatives_per_query=s.negatives, max_train_queries=s.max_train_queries, seed=s.seed)
    stop = data.val if s.val_queries is None else random.Random(s.seed).sample(data.val, min(s.val_queries, len(data.val)))
    return data, stop


def pairs_sha256(pairs) -> str:
    digest = hashlib.sha256()
    for query, text, label, _ in pairs:
        digest.update(f"{query}\t{text}\t{label:.4f}\n".encode())
    return digest.hexdigest()


def planned_reports(s: RankerTrialSettings, train_pairs: int) -> int:
    total = max(1, int(math.ceil(train_pairs / s.batch_size) * s.epochs))
    if s.max_steps:
        total = min(total, s.max_steps)
    return math.ceil(total / s.eval_every)


def ranker_trial(config: dict, fixed: dict, cpu: float = 1.0) -> None:


    s = RankerTrialSettings.model_validate(apply_dotted(fixed, config))
    torch.set_num_threads(threads_for(cpu))
    random.seed(s.seed), torch.manual_seed(s.seed)
    data, stop_groups = load_data(s)
    pairs = training_pairs(data)
    work = Path(tempfile.mkdtemp(prefix="shopray-ranker-trial-"))
    state, history = None, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            shutil.copytree(Path(d) / "model", work / "model")
            state = torch.load(Path(d) / "trainer.pt", weights_only=False)
            history = json.loads((Path(d) / "meta.json").read_text())["history"]
        model_dir = work / "model"
    else:
        model_dir = init_cross_encoder(work / "model", seed=s.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    scorer = CrossEncoderScorer.from_model(model, tokenizer, version="trial", max_length=s.max_length, batch_size=128)
    fit = Fit(model, scorer, pairs, epochs=s.epochs, max_steps=s.max_steps, batch_size=s.batch_size, lr=s.lr, warmup=s.warmup, eval_every=s.eval_every, bf16=s.bf16, seed=s.seed, listwise=s.listwise)
    if state is not None:
        fit.load_state_dict(state)
    planned = planned_reports(s, len(pairs))
    info = {**data.info, "train_pairs_sha256": pairs_sha256(pairs)}

    def on_eval(step: int, loss_ema: float | None) -> bool:
        score = val_ndcg(scorer, stop_groups)
        history.append({"step": step, "val_ndcg@10": round(score, 4)})
        with tempfile.TemporaryDirectory(prefix="ckpt-") as tmp:
            model.save_pretrained(Path(tmp) / "model")
            tokenizer.save_pretrained(Path(tmp) / "model")
            torch.save({k: v for k, v in fit.state_dict().items() if k != "optim"}, Path(tmp) / "trainer.pt")
            (Path(tmp) / "meta.json").write_text(json.dumps({"step": step, "history": history, "data": info, "settings": s.model_dump(mode="json")}))
            tune.report(
                {"val_ndcg@10": score, "loss": float(loss_ema or 0.0), "step": step, "planned_reports": planned, "train_pairs": len(pairs), "val_groups": len(stop_groups)},
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )
        return False

    if fit.step >= fit.total:
        return
    fit.run(on_eval)
    shutil.rmtree(work, ignore_errors=True)
