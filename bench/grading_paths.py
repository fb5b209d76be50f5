"""The two in-process grading paths `make bench` compares, over the same head.

naive_loop(texts)    the plain Hugging Face loop: one essay at a time, fp32, AutoModel forward
                     under torch.no_grad, mean pooling, L2-normalise, then the shipped head.
batched_path(texts)  the project's path: DefaultGrader.grade (one Encoder.embed call per batch:
                     length-sorted batches, inference_mode, bf16 autocast where measured faster).
Both return the grader's result dicts; a score difference comes from batching/precision alone.

    .venv/bin/python -m bench.grading_paths --n 300      # essays/s, QWK vs humans, agreement

Compatibility with bench/run.py: NaiveLoop(...).grade(grader, texts, rubrics) and
batched_path(grader, texts, rubrics, batch) are accepted too.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = {"name": "default", "scale": {"min": 1, "max": 6, "step": 1}}
_GRADER = None
_NAIVE = None


def default_grader():
    global _GRADER
    if _GRADER is None:
        from workers.ml.grading.default import DefaultGrader

        _GRADER = DefaultGrader.load()
    return _GRADER


_SERVICES: dict = {}


def service(grader):
    """The one grading interface over an already loaded grader (workers/ml/grading/service.py)."""
    from workers.ml.grading.service import GradingService

    if id(grader) not in _SERVICES:
        _SERVICES[id(grader)] = GradingService.over(grader.encoder, {"default": grader, "asap-": grader})
    return _SERVICES[id(grader)]


class NaiveLoop:
    def __init__(self, max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        from workers.ml.encoder import default_model_dir

        self.tok = AutoTokenizer.from_pretrained(default_model_dir(), local_files_only=True)
        from workers.ml.device import choose_device

        self.device = choose_device()  # on a CUDA machine the plain loop runs on the GPU too (bench/gpu.sh)
        self.model = AutoModel.from_pretrained(default_model_dir(), local_files_only=True).float().eval().to(self.device)
        self.max_length = max_length

    def embed_one(self, text: str, layers: bool = False) -> np.ndarray:
        """layers=True: every hidden state pooled and normalised on its own, concatenated (what the ASAP
        graders read, as Encoder.embed(texts, layers=True))."""
        with torch.no_grad():
            enc = self.tok(text if (text and text.strip()) else " ", truncation=True, max_length=self.max_length,
                           return_tensors="pt").to(self.device)
            out = self.model(**enc, output_hidden_states=layers)
            m = enc["attention_mask"].unsqueeze(-1).float()
            return torch.cat([torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
                              for h in (out.hidden_states if layers else (out.last_hidden_state,))], -1)[0].cpu().numpy()

    def grade(self, grader, texts: list[str], rubrics: list[dict]) -> list[dict]:
        prompts = sorted({(r.get("prompt") or "").strip() for r in rubrics} - {""})
        prompt_emb = {p: self.embed_one(p) for p in prompts}
        from workers.ml.grading.interface import GradeRequest
        from workers.ml.grading.service import finish

        svc, out = service(grader), []
        for t, r in zip(texts, rubrics):
            req = [GradeRequest(t, r, "default")]
            out += finish(req, grader.score_embedded(req, self.embed_one(t)[None, :], prompt_emb), svc.reviewer)
        return out


def scored(asap, p: str) -> dict:
    """Prompt p's rubric with always_score: the bench measures agreement on every essay."""
    return {**asap.rubric(p), "always_score": True}


def naive_asap(naive: NaiveLoop, asap, texts: list[str], prompt_ids: list[str]) -> list[dict]:
    """The shipped per-prompt ASAP graders fed the naive way: one essay per call, fp32 HF forward."""
    svc, out = service(asap), []
    for t, p in zip(texts, prompt_ids):
        out += svc.grade_with(f"asap-{p}", [t], [scored(asap, p)], naive.embed_one(t, layers=asap.all_layers)[None, :])
    return out


def batched_asap(asap, texts: list[str], prompt_ids: list[str], batch: int = 64) -> list[dict]:
    """The worker's path for 'asap-N' jobs: the grading service on worker-sized batches (one Encoder.embed each)."""
    from workers.ml.grading.interface import GradeRequest

    svc, out = service(asap), []
    for i in range(0, len(texts), batch):
        out += svc.grade([GradeRequest(t, scored(asap, p), f"asap-{p}")
                          for t, p in zip(texts[i:i + batch], prompt_ids[i:i + batch])])
    return out


def naive_loop(texts: list[str], rubrics: list[dict] | None = None, grader=None) -> list[dict]:
    global _NAIVE
    if _NAIVE is None:
        _NAIVE = NaiveLoop()
    return _NAIVE.grade(grader or default_grader(), list(texts), rubrics or [DEFAULT_RUBRIC] * len(texts))


def batched_path(texts, rubrics: list[dict] | None = None, grader=None, batch: int = 64) -> list[dict]:
    if hasattr(texts, "score"):  # bench/run.py's form: batched_path(grader, texts, rubrics, batch)
        grader, texts, rubrics = texts, rubrics, grader
    grader = grader or default_grader()
    texts = list(texts)
    rubrics = rubrics or [DEFAULT_RUBRIC] * len(texts)
    svc, out = service(grader), []
    for i in range(0, len(texts), batch):
        out += svc.grade_with("default", texts[i:i + batch], rubrics[i:i + batch])
    return out


def main(argv: list[str] | None = None) -> int:
    from workers.ml.device import choose_device
    from workers.ml.evaluation.evaluate import load_rows, per_prompt_qwk, rubric_for

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "asap" / "dev.jsonl"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64, help="essays per grader.grade call (a worker batch)")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args(argv)
    rows, rubrics = load_rows(args.data)
    per = -(-args.n // len(rubrics))
    picked = []
    for p in sorted(rubrics, key=int):
        picked += [r for r in rows if str(r["prompt"]) == p][:per]
    rows = picked[: args.n]
    texts = [r["essay"] for r in rows]
    rbs = [rubric_for(r["prompt"], rubrics) for r in rows]
    g = default_grader()
    g.warmup()
    print(f"{len(rows)} dev essays; device {choose_device()}, encoder {g.encoder.precision} batch "
          f"{g.encoder.batch_size}, torch threads {torch.get_num_threads()}, {g.version}", flush=True)
    res = {}
    paths = [("batched", lambda: batched_path(texts, rbs, g, args.batch))]
    if not args.skip_naive:
        naive_loop(texts[:2], rbs[:2], g)  # load + warm
        paths.insert(0, ("naive", lambda: naive_loop(texts, rbs, g)))
    for name, fn in paths:
        t0 = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - t0
        scores = [o["score"] for o in out]
        q = per_prompt_qwk(rows, scores, rubrics)
        res[name] = {"seconds": secs, "essays_per_s": len(rows) / secs, "scores": scores,
                     "mean_qwk": float(np.mean([v["qwk"] for v in q.values()]))}
        print(f"{name:8} {secs:7.1f}s {len(rows) / secs:6.2f} essays/s  mean QWK {res[name]['mean_qwk']:.4f}",
              flush=True)
    if "naive" in res:
        a, b = res["naive"], res["batched"]
        same = np.mean([x == y for x, y in zip(a["scores"], b["scores"])])
        print(f"speed-up {b['essays_per_s'] / a['essays_per_s']:.2f}x; QWK change {b['mean_qwk'] - a['mean_qwk']:+.4f}; "
              f"identical scores {same:.1%}")
        print(json.dumps({k: {kk: round(vv, 4) for kk, vv in v.items() if kk != "scores"} for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
