"""A stress set for the review flags, built at run time from real essays, and how well the flags do on it.

    python -m workers.ml.evaluation.stress --data ../shared/data/asap/dev.jsonl [--per-prompt 40] [--out var/stress.json]

For a seeded sample of `per_prompt` essays of each prompt and each kind:
  shuffled       the essay's words in random order (punctuation stays attached to its word)
  moved          the essay unchanged, graded against another (random) prompt's id and task text
  repeated       the essay followed by a copy of itself as a new paragraph, or by its first half
                 with no paragraph break (ASAP essays have no paragraph breaks)
  random_chars   the whole text replaced by random letter strings, or 60% of its words replaced
  prompt_pasted  the prompt's task text (rubrics.json, read at run time) pasted before the essay,
                 into its middle, or instead of it
  very_short     the essay's first 5-10 words
Printed and returned: the catch rate per kind (any review reason; and by the kind's own tag), overall,
and the flag rate on ALL the real essays of the file with the reasons' breakdown. Real essays are
graded against their own prompt id and task text (ASAP path: the prompt classifier); the teacher-rubric
path (prompt_ids=None: cosine to the embedded task text) is reported too, for real and moved essays.
Embeddings: real essays through `real_embed_fn` (the CLI uses var/cache), only synthetic texts are embedded.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from workers.ml.stress_set import EXPECTED, KINDS, SEED, load, make_stress


def _breakdown(reasons: list[list[str]]) -> dict:
    from workers.ml.grading.review import tag

    c = Counter(t for rs in reasons for t in {tag(x) for x in rs})
    return dict(sorted(c.items(), key=lambda kv: -kv[1]))


def run_stress(reviewer, encoder_embed_fn, data_path: str, per_prompt: int = 40, seed: int = SEED,
               real_embed_fn=None, limit: int | None = None, verbose: bool = True,
               real_per_prompt: int | None = None) -> dict:
    """The stress table as a dict. encoder_embed_fn(texts) -> (N, 384) embeddings (the same Encoder the
    graders use, max_length 512) for the synthetic texts; real_embed_fn for the real essays (e.g. the
    var/cache lookup), default encoder_embed_fn. limit: only the first `limit` real essays;
    real_per_prompt: only the first that many real essays of each prompt (tests: every prompt, fewer to embed)."""
    rows, rubrics = load(data_path)
    rows = rows[:limit] if limit else rows
    if real_per_prompt:
        kept, per = [], Counter()
        for r in rows:
            if per[str(r["prompt"])] < real_per_prompt:
                per[str(r["prompt"])] += 1
                kept.append(r)
        rows = kept
    real_embed_fn = real_embed_fn or encoder_embed_fn
    t0 = time.perf_counter()
    real_texts = [r["essay"] for r in rows]
    real_pids = [str(r["prompt"]) for r in rows]
    real_ptxt = [rubrics[p]["task"] for p in real_pids]
    real_emb = real_embed_fn(real_texts)
    items = make_stress(rows, rubrics, per_prompt, seed)
    # only new texts are embedded: a moved essay keeps its own embedding
    index = {r["essay_id"]: i for i, r in enumerate(rows)}
    new = [it for it in items if it["kind"] != "moved"]
    new_emb = encoder_embed_fn([it["text"] for it in new]) if new else np.zeros((0, real_emb.shape[1]))
    emb = np.zeros((len(items), real_emb.shape[1]), dtype=np.float32)
    k = 0
    for i, it in enumerate(items):
        if it["kind"] == "moved":
            emb[i] = real_emb[index[it["source"]]]
        else:
            emb[i] = new_emb[k]
            k += 1
    t_embed = time.perf_counter() - t0

    from workers.ml.grading.review import measure

    t1 = time.perf_counter()
    real_reasons = reviewer.reasons(real_texts, real_emb, prompt_ids=real_pids, prompt_texts=real_ptxt)
    t_real = time.perf_counter() - t1
    real_m = [measure(t, p) for t, p in zip(real_texts, real_ptxt)]
    st_reasons = reviewer.reasons([it["text"] for it in items], emb, prompt_ids=[it["prompt_id"] for it in items],
                                  prompt_texts=[it["prompt_text"] for it in items])
    # the teacher-rubric path: no prompt id, cosine to the embedded task text
    tasks = sorted({rubrics[p]["task"] for p in rubrics})
    pemb = dict(zip(tasks, encoder_embed_fn(tasks)))
    moved = [i for i, it in enumerate(items) if it["kind"] == "moved"]
    real_teacher = reviewer.reasons(real_texts, real_emb, prompt_ids=None, prompt_texts=real_ptxt, prompt_emb=pemb,
                                    measures=real_m)
    moved_teacher = reviewer.reasons([items[i]["text"] for i in moved], emb[moved], prompt_ids=None,
                                     prompt_texts=[items[i]["prompt_text"] for i in moved], prompt_emb=pemb)

    from workers.ml.grading.review import tag

    per_kind = {}
    for kind in KINDS:
        idx = [i for i, it in enumerate(items) if it["kind"] == kind]
        if not idx:
            continue
        caught = [bool(st_reasons[i]) for i in idx]
        own = [any(tag(x) == EXPECTED[kind] for x in st_reasons[i]) for i in idx]
        per_kind[kind] = {"n": len(idx), "caught": round(float(np.mean(caught)), 4),
                          "by_own_tag": round(float(np.mean(own)), 4),
                          "reasons": _breakdown([st_reasons[i] for i in idx])}
        misses = [i for i in idx if not st_reasons[i]]
        if misses:
            per_kind[kind]["missed_examples"] = [
                {"source": items[i]["source"], "prompt_id": items[i]["prompt_id"], "variant": items[i]["variant"]}
                for i in misses[:5]]
    overall = float(np.mean([bool(r) for r in st_reasons])) if items else float("nan")
    flagged = [bool(r) for r in real_reasons]
    per_prompt_fp = {p: round(float(np.mean([f for f, q in zip(flagged, real_pids) if q == p])), 4)
                     for p in sorted(set(real_pids), key=int)}
    res = {
        "data": str(data_path), "seed": seed, "per_prompt": per_prompt, "n_real": len(rows), "n_stress": len(items),
        "reviewer": reviewer.version,
        "kinds": per_kind,
        "catch_rate": round(overall, 4),
        "real_flag_rate": round(float(np.mean(flagged)), 4),
        "real_flag_rate_per_prompt": per_prompt_fp,
        "real_reasons": _breakdown(real_reasons),
        "teacher_rubric_path": {
            "real_flag_rate": round(float(np.mean([bool(r) for r in real_teacher])), 4),
            "real_offtopic_rate": round(float(np.mean([any(tag(x) == "off-topic" for x in r) for r in real_teacher])), 4),
            "moved_caught": round(float(np.mean([bool(r) for r in moved_teacher])), 4) if moved else None,
            "moved_offtopic": round(float(np.mean([any(tag(x) == "off-topic" for x in r) for r in moved_teacher])), 4)
            if moved else None,
        },
        "seconds": {"embed": round(t_embed, 1), "flags_real": round(t_real, 2),
                    "flags_ms_per_essay": round(1000 * t_real / max(len(rows), 1), 3)},
    }
    if verbose:
        print(format_table(res))
    return res


def format_table(res: dict) -> str:
    lines = [f"stress set from {res['data']} (seed {res['seed']}, {res['per_prompt']} per prompt and kind), "
             f"reviewer {res['reviewer']}",
             "| kind | n | caught (any reason) | caught by its own tag | reasons |", "|---|---|---|---|---|"]
    for kind, v in res["kinds"].items():
        rs = ", ".join(f"{k} {n}" for k, n in v["reasons"].items())
        lines.append(f"| {kind} | {v['n']} | {v['caught']:.1%} | {v['by_own_tag']:.1%} | {rs} |")
    lines.append(f"| **all stress** | {res['n_stress']} | **{res['catch_rate']:.1%}** | | |")
    rs = ", ".join(f"{k} {n}" for k, n in res["real_reasons"].items())
    lines.append(f"| **real essays flagged** | {res['n_real']} | **{res['real_flag_rate']:.2%}** | | {rs} |")
    tp = res["teacher_rubric_path"]
    lines.append(f"teacher-rubric path (cosine to the task text): real flagged {tp['real_flag_rate']:.2%} "
                 f"(off-topic {tp['real_offtopic_rate']:.2%}); moved essays caught {tp['moved_caught']:.1%} "
                 f"(off-topic {tp['moved_offtopic']:.1%})")
    lines.append("real flag rate per prompt: " + ", ".join(f"{p}: {v:.1%}" for p, v in res["real_flag_rate_per_prompt"].items()))
    lines.append(f"flags: {res['seconds']['flags_ms_per_essay']} ms per real essay (embeddings excluded)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="stress set for the review flags")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[4] / "shared" / "data" / "asap" / "dev.jsonl"))
    ap.add_argument("--per-prompt", type=int, default=40)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from workers.ml.embedding_cache import cached_embed
    from workers.ml.encoder import Encoder
    from workers.ml.grading.review import Reviewer

    enc = Encoder(max_length=512)
    reviewer = Reviewer.load(encoder=enc)
    tag_ = Path(args.data).stem
    res = run_stress(reviewer, enc.embed, args.data, args.per_prompt, args.seed,
                     real_embed_fn=lambda t: cached_embed(enc, t, tag_, verbose=False), limit=args.limit)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
