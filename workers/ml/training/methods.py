"""One entry point for every fine-tune method: scored examples in, a model folder and its validation
metrics out. The training task (workers/runtime/training.py) holds the lease and stores the result.

    trained = train(params, examples, rubric, workdir, model_id, report=..., should_stop=...)

Methods:
- `stack` (the default on a CPU): the shipped ASAP graders' recipe for any rubric (stack.py);
- `head`, `lora`, `full`: the torch loop (finetune.py, trainer.py); `lora` and `full` are for GPUs;
- `auto` (the API's default): on a worker without CUDA, `stack` (or `head` above
  EDUQ_STACK_MAX_EXAMPLES examples, where the stack's n x n kernels stop paying); on a CUDA worker
  `stack`, then `lora`, then `full`, each started while EDUQ_TRAIN_BUDGET_S lasts (a candidate that
  runs past it is stopped and dropped; the first always finishes), and the one with the best
  validation QWK is kept. Its metrics say which candidates ran, their QWK and seconds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.settings import settings
from workers.ml.scales import rubric_scales

METHODS = ("auto", "stack", "head", "lora", "full")
AUTO_CANDIDATES_CUDA = ("stack", "lora", "full")


@dataclass
class Trained:
    method: str
    out_dir: Path
    metrics: dict


def cuda_available() -> bool:
    from workers.ml.device import choose_device

    return choose_device().type == "cuda"


def cpu_method(n_examples: int) -> str:
    """What `auto` means on a worker without CUDA."""
    return "stack" if n_examples <= settings().stack_max_examples else "head"


def train(params: dict, examples: list[dict], rubric: dict, workdir: Path, model_id: str, report=None,
          should_stop=None, nproc: int = 1) -> Trained:
    method = params.get("method") or "auto"
    if method not in METHODS:
        raise ValueError(f"unknown fine-tune method {method!r}; known: {', '.join(METHODS)}")
    if method != "auto":
        return _train_one(method, params, examples, rubric, workdir, model_id, report, should_stop, nproc)
    if not cuda_available():
        chosen = cpu_method(len(examples))
        t = _train_one(chosen, params, examples, rubric, workdir, model_id, report, should_stop, nproc)
        why = ("no CUDA device: the stacked recipe" if chosen == "stack" else
               f"no CUDA device and more than {settings().stack_max_examples} examples: head")
        t.metrics["auto"] = {"chosen": chosen, "why": why}
        return t
    return _train_auto_cuda(params, examples, rubric, workdir, model_id, report, should_stop, nproc)


def _train_auto_cuda(params, examples, rubric, workdir: Path, model_id: str, report, should_stop, nproc) -> Trained:
    from workers.ml.training.trainer import Stopped

    budget = float(settings().train_budget_s)
    t0 = time.monotonic()
    done: list[Trained] = []
    tried: dict[str, dict] = {}
    for m in AUTO_CANDIDATES_CUDA:
        if done and time.monotonic() - t0 >= budget:
            tried[m] = {"skipped": "time budget spent"}
            continue
        t1 = time.monotonic()

        def stop(first=not done) -> bool:
            over = not first and time.monotonic() - t0 > budget
            return bool((should_stop and should_stop()) or over)

        try:
            t = _train_one(m, params, examples, rubric, workdir / m, model_id, report, stop, nproc)
        except Stopped:
            if should_stop and should_stop():
                raise
            tried[m] = {"skipped": "stopped at the time budget", "seconds": round(time.monotonic() - t1, 1)}
            continue
        done.append(t)
        tried[m] = {"qwk": t.metrics["qwk"], "seconds": round(time.monotonic() - t1, 1)}
    best = max(done, key=lambda t: (t.metrics["qwk"], -AUTO_CANDIDATES_CUDA.index(t.method)))
    best.metrics["auto"] = {"chosen": best.method, "why": "best validation QWK within EDUQ_TRAIN_BUDGET_S",
                            "budget_s": budget, "candidates": tried}
    return best


def _train_one(method, params, examples, rubric, workdir: Path, model_id, report, should_stop, nproc) -> Trained:
    workdir.mkdir(parents=True, exist_ok=True)
    if method == "stack":
        return _train_stack(params, examples, rubric, workdir, model_id, report, should_stop)
    return _train_torch(method, params, examples, rubric, workdir, model_id, report, should_stop, nproc)


def _train_stack(params, examples, rubric, workdir: Path, model_id, report, should_stop) -> Trained:
    from workers.ml.encoder import AllLayers
    from workers.ml.training import stack
    from workers.ml.training.finetune import embed_in_chunks, get_encoder, split

    t0 = time.monotonic()
    main, _ = rubric_scales(rubric)
    seed = int(params.get("seed", 13))
    tr, va = split(main.index(np.asarray([e["score"] for e in examples], np.float64)),
                   float(params.get("validation_fraction", 0.2)), seed)
    if report:
        report({"stage": "preparing", "examples": len(examples)}, force=True)
    enc = get_encoder(512)
    emb = embed_in_chunks([e["text"] for e in examples], enc.max_length, report, should_stop, embedder=AllLayers(enc))
    embed_s = time.monotonic() - t0
    run = stack.fit(examples, rubric, emb, tr, enc.n_states, enc.dim, seed=seed, should_stop=should_stop, report=report)
    if report:
        report({"stage": "evaluating", "cv_qwk": run.cv["holistic"]["cv_qwk"]}, force=True)
    metrics = stack.evaluate(run, examples, rubric, emb, va, enc.n_states)
    metrics.update(n_train=int(len(tr)), n_validation=int(len(va)), embed_seconds=round(embed_s, 1),
                   train_seconds=round(time.monotonic() - t0, 1))
    if report:
        report({"stage": "saving"}, force=True)
    out = stack.save(run, rubric, workdir / "model", {"model_id": model_id, "metrics": metrics}, enc)
    return Trained("stack", out, metrics)


def _train_torch(method, params, examples, rubric, workdir: Path, model_id, report, should_stop, nproc) -> Trained:
    from workers.ml.training.finetune import evaluate, fit, prepare, save
    from workers.ml.training.trainer import Stopped, TrainConfig

    t0 = time.monotonic()
    cfg = TrainConfig.make(method, params.get("hyperparameters"), seed=int(params.get("seed", 13)))
    if report:
        report({"stage": "preparing", "examples": len(examples)}, force=True)
    prep, info = prepare(examples, rubric, cfg, float(params.get("validation_fraction", 0.2)),
                         report=report, should_stop=should_stop)
    if nproc > 1:
        from workers.ml.training.ddp import run_ddp

        model, hist = run_ddp(prep, cfg, workdir, nproc, report=report, should_stop=should_stop)
    else:
        model, hist = fit(prep, cfg, report=report, should_stop=should_stop)
    if should_stop and should_stop():
        raise Stopped()
    if report:
        report({"stage": "evaluating", "best_epoch": hist["best_epoch"], "best_val_qwk": hist["best_val_qwk"]},
               force=True)
    metrics = evaluate(model, prep, cfg, rubric, examples)
    metrics.update(best_epoch=hist["best_epoch"], epochs_run=len(hist["history"]), steps=hist["steps"],
                   train_processes=hist.get("world_size", nproc), train_seconds=round(time.monotonic() - t0, 1))
    if report:
        report({"stage": "saving"}, force=True)
    out = save(model, cfg, info, rubric, workdir / "model", {"model_id": model_id, "metrics": metrics,
                                                             "history": hist["history"]})
    return Trained(method, out, metrics)
