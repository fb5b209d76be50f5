"""`eduq grader eval`: a grader's agreement with human raters on an ASAP-style file, as a JSON report
and an HTML validity report (workers/ml/evaluation/report.py).

    run_eval("asap" | "default" | PATH, "../shared/data/asap/dev.jsonl", stress=True) -> report dict

The statistics are `asap_eval.evaluate_asap`'s for every model, through the grader interface: the
shipped per-prompt graders on their own rubrics, the rubric-agnostic default grader on each prompt's
rubric (range and traits read from rubrics.json beside the data, at run time), so both are measured
the same way. With `stress`, the review flags' stress set (workers/ml/evaluation/stress.py) built
from the same file is added; with `lopo`, the default grader's leave-one-prompt-out figures.
"""
from __future__ import annotations

import json
from pathlib import Path


def load_rubrics(data_path: str) -> dict:
    return json.loads((Path(data_path).parent / "rubrics.json").read_text())["prompts"]


def load_grader(model: str, data_path: str):
    """'asap' or an asap artifacts folder -> the shipped per-prompt graders; 'default' or a head .npz ->
    the default grader on each prompt's rubric (rubrics.json beside the data). An EvalTarget."""
    from workers.ml.evaluation.asap_eval import asap_target, default_target
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader

    path = Path(model)
    if model == "asap" or (path.is_dir() and (path / "manifest.json").is_file()):
        return asap_target(AsapGrader.load(artifacts_dir=None if model == "asap" else path))
    if model == "default" or (path.is_file() and path.suffix == ".npz"):
        return default_target(DefaultGrader.load(head_path=None if model == "default" else str(path)),
                              load_rubrics(data_path))
    raise ValueError(f"unknown model {model!r}: use asap, default, an asap artifacts folder or a head .npz file")


def read_lopo(path: str) -> dict:
    """Leave-one-prompt-out figures from a JSON file: {"per_prompt": ..., "mean_qwk": ...} (what
    asap_stack.lopo returns) or an earlier eval report holding them under "lopo"."""
    d = json.loads(Path(path).read_text())
    if isinstance(d, dict) and isinstance(d.get("lopo"), dict):
        d = d["lopo"]  # an eval report (its own per_prompt is the grader's)
    if not (isinstance(d, dict) and isinstance(d.get("per_prompt"), dict) and "mean_qwk" in d):
        raise ValueError(f"{path} holds no leave-one-prompt-out figures (per_prompt, mean_qwk)")
    return d


def run_eval(model: str, data_path: str, limit: int | None = None, stress: bool = True,
             stress_per_prompt: int = 40, lopo: str | dict | None = None, cache: bool = True,
             lopo_train: str | None = None) -> dict:
    """lopo: the default grader's leave-one-prompt-out figures to include, as a dict or a JSON file
    (read_lopo). lopo_train: compute them instead (asap_stack.lopo: the recipe fitted on seven prompts of
    this train file, QWK on the eighth's essays of data_path, all of it; --limit does not apply)."""
    from workers.ml.evaluation.asap_eval import evaluate_asap

    g = load_grader(model, data_path)
    rep = evaluate_asap(g, data_path, limit=limit, cache=cache)
    rep["model"] = model
    rep["prompts"] = {p: {"qwk": v["qwk"], "n": v["n"]} for p, v in rep["per_prompt"].items()}  # the contract's shape
    if any("tolerance" in v for v in rep["per_prompt"].values()):
        rep["tolerance_note"] = ("Agreement counts a score as agreeing when it is within the prompt's tolerance of the "
                                 "human score: exact for ranges of up to 12 points, within 3 points on prompt 7 (0-30) "
                                 "and 6 on prompt 8 (0-60).")
    if stress:
        from workers.ml.embedding_cache import cached_embed
        from workers.ml.evaluation.stress import run_stress
        from workers.ml.grading.review import Reviewer

        enc = g.grader.encoder
        tag = Path(data_path).stem
        st = run_stress(Reviewer.load(encoder=enc), enc.embed, data_path, per_prompt=stress_per_prompt,
                        real_embed_fn=(lambda t: cached_embed(enc, t, tag, verbose=False)) if cache else None,
                        limit=limit, verbose=False)
        rep["stress"] = st
        rep["needs_review_share"] = st.get("real_flag_rate")
    if lopo_train:
        from workers.ml.training.asap_stack import lopo as compute_lopo

        enc = g.grader.encoder if g.model("1") == "default" else None  # the default grader's own MiniLM
        rep["lopo"] = compute_lopo(lopo_train, data_path, encoder=enc)
    elif isinstance(lopo, dict):
        rep["lopo"] = lopo
    elif lopo:
        rep["lopo"] = read_lopo(lopo)
    return rep
