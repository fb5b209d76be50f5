"""The compression trade-off table (issue 16): every encoder variant over the same ASAP dev essays, one run.

    python bench/compression.py [--per-prompt 50] [--variants full,l4,int8,l4-int8] [--skip-platform]
                                [--json out.json] [--emulate avx2]

--emulate avx2 reruns itself (and its worker) with every kernel library capped at AVX2 (ATEN_CPU_CAPABILITY,
ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS, FBGEMM_ENABLE_INSTRUCTIONS) and fp32 arithmetic: an AVX2-only
CPU's instruction set on this machine's cores, caches and clocks (an emulation, and printed as one).

For each variant (workers/ml/variants.py) with its own refit heads:
  model path   essays/s of the default grader through GradingService on worker-sized batches (the worker's
               path), and its ratio to the naive loop (one essay at a time, full fp32 model, Hugging Face)
  platform     HTTP -> Postgres -> Redis -> Celery worker (EDUQ_ENCODER_VARIANT=<variant>) -> Postgres -> polled,
               essays/s and ratio to the naive loop, and the worker's peak RSS
  quality      mean QWK of the default grader (dQWK against the naive full model) and of the ASAP graders
               (dQWK against the full model's) on these essays; the dev-wide gate figures from quality.json
  size         the stored encoder weights
It prints the CPU's features, the variant this machine would serve and why, and the targets: through the
platform >= 2.0x the naive loop on an AVX2-only CPU and >= 3.0x with AVX512-BF16 or AMX, with |dQWK| <= 0.005,
and a served model at most half the full model's size.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EMULATE = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "EDUQ_PRECISION": "fp32"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-prompt", type=int, default=50)
    ap.add_argument("--variants", default=None, help="comma-separated (default: full and every built variant)")
    ap.add_argument("--skip-platform", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--emulate", choices=sorted(EMULATE), default=None)
    args = ap.parse_args(argv)
    if args.emulate and os.environ.get("EDUQ_BENCH_EMULATED") != args.emulate:  # the caps must precede torch
        env = dict(os.environ, EDUQ_BENCH_EMULATED=args.emulate, **EMULATE[args.emulate])
        os.execve(sys.executable, [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])], env)
    import torch

    from bench.grading_paths import NaiveLoop, batched_asap, batched_path, service
    from bench.run import cpu_features, mean_qwk, platform_scores, rubric_for, sample
    from workers.ml.encoder import Encoder
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.variants import VARIANTS, choose_variant, gate, hardware_class, model_size_bytes, quality, runs_on

    hw = args.emulate or hardware_class()
    names = args.variants.split(",") if args.variants else [n for n, v in VARIANTS.items() if v.built]
    names = [n for n in names if runs_on(VARIANTS[n], hw)]
    chosen, why = choose_variant(hw=hw)
    print(cpu_features(), flush=True)
    if args.emulate:
        print(f"EMULATED {args.emulate}-only CPU: {', '.join(f'{k}={v}' for k, v in EMULATE[args.emulate].items())}",
              flush=True)
    print(f"hardware class {hw}; torch threads {torch.get_num_threads()}; this machine serves: {chosen.name} ({why})",
          flush=True)
    rows, rubrics = sample(args.per_prompt)
    texts = [r["essay"] for r in rows]
    rbs = [rubric_for(str(r["prompt"]), rubrics) for r in rows]
    pids = [str(r["prompt"]) for r in rows]
    n = len(rows)
    batch = 64

    # the naive loop: full fp32 model, one essay at a time, the full model's default head
    full_grader = DefaultGrader.load(encoder=Encoder(variant="full"))
    service(full_grader).warmup("default")
    naive = NaiveLoop()
    naive.grade(full_grader, texts[:2], rbs[:2])
    t0 = time.perf_counter()
    naive_scores = [o["score"] for o in naive.grade(full_grader, texts, rbs)]
    t_naive = time.perf_counter() - t0
    q_naive = mean_qwk(rows, naive_scores, rubrics)
    print(f"{n} dev essays; naive loop {n / t_naive:.1f} essays/s, default-grader QWK {q_naive:.4f}", flush=True)
    del naive, full_grader

    table = []
    for name in names:
        enc = Encoder(max_length=512, variant=name)
        grader = DefaultGrader.load(encoder=enc)
        service(grader).warmup("default")
        batched_path(grader, texts[:8], rbs[:8], batch)  # kernels for the first shapes
        t0 = time.perf_counter()
        scores = [o["score"] for o in batched_path(grader, texts, rbs, batch)]
        t_model = time.perf_counter() - t0
        asap = AsapGrader.load(encoder=enc)
        service(asap).warmup("asap-1", asap.rubric("1"))
        asap_scores = [o["score"] for o in batched_asap(asap, texts, pids, batch)]
        row = {"variant": name, "precision": enc.precision, "size_mb": model_size_bytes(name) / 1e6,
               "model_eps": n / t_model, "model_ratio": t_naive / t_model,
               "qwk": mean_qwk(rows, scores, rubrics), "asap_qwk": mean_qwk(rows, asap_scores, rubrics)}
        qual = quality(name)
        row["gate"] = "reference" if name == "full" else ("eligible" if gate(qual)[0] else "not eligible")
        if qual:
            row["dev_asap_dqwk"], row["dev_lopo_dqwk"] = qual["asap"]["mean_delta"], qual["default_lopo"]["delta"]
        print(f"[{name}] model path {row['model_eps']:.1f} essays/s ({row['model_ratio']:.2f}x naive), "
              f"QWK {row['qwk']:.4f}, ASAP QWK {row['asap_qwk']:.4f}", flush=True)
        del enc, grader, asap
        table.append(row)

    if not args.skip_platform:
        for row in table:
            stats: dict = {}
            secs, plat = platform_scores(rows, rubrics, {"EDUQ_ENCODER_VARIANT": row["variant"]}, stats)
            row.update(platform_eps=n / secs, platform_ratio=t_naive / secs,
                       platform_qwk=mean_qwk(rows, plat, rubrics), worker_rss_mib=stats.get("worker_peak_rss_mib"))
            print(f"[{row['variant']}] platform {row['platform_eps']:.1f} essays/s ({row['platform_ratio']:.2f}x naive), "
                  f"worker peak RSS {row['worker_rss_mib']:.0f} MiB", flush=True)

    ref = next((r for r in table if r["variant"] == "full"), None)
    print()
    print(f"{n} dev essays, naive loop {n / t_naive:.1f} essays/s (full fp32, one essay at a time), "
          f"default-grader QWK {q_naive:.4f}")
    head = (f"{'variant':9} {'prec':5} {'MB':>6} {'model e/s':>9} {'x naive':>7} {'platform e/s':>12} {'x naive':>7} "
            f"{'dQWK dflt':>9} {'dQWK asap':>9} {'dev gate dQWK asap/lopo':>23} {'RSS MiB':>8} {'gate':>12}")
    print(head)
    for r in table:
        dev = (f"{r['dev_asap_dqwk']:+.4f}/{r['dev_lopo_dqwk']:+.4f}" if "dev_asap_dqwk" in r else "")
        print(f"{r['variant']:9} {r['precision']:5} {r['size_mb']:6.1f} {r['model_eps']:9.1f} {r['model_ratio']:7.2f} "
              f"{r.get('platform_eps', float('nan')):12.1f} {r.get('platform_ratio', float('nan')):7.2f} "
              f"{r['qwk'] - q_naive:+9.4f} {r['asap_qwk'] - (ref['asap_qwk'] if ref else r['asap_qwk']):+9.4f} "
              f"{dev:>23} {r.get('worker_rss_mib') or float('nan'):8.0f} {r['gate']:>12}")
    for name, v in VARIANTS.items():
        if not v.built and quality(name):
            print(f"{name:9} not built here (measured and kept as quality.json only: "
                  f"{'eligible' if gate(quality(name))[0] else 'not eligible: ' + gate(quality(name))[1]}; "
                  f"python -m workers.ml.evaluation.variants build {name})")
    served = next((r for r in table if r["variant"] == chosen.name), None)
    target = 3.0 if hw in ("amx", "avx512_bf16") else 2.0
    if served and "platform_ratio" in served:
        ok = served["platform_ratio"] >= target
        small = served["size_mb"] <= 0.5 * model_size_bytes("full") / 1e6
        print(f"\nserved variant {chosen.name}: platform {served['platform_ratio']:.2f}x the naive loop "
              f"(target >= {target:.1f}x on {hw}: {'met' if ok else 'NOT met'}); size {served['size_mb']:.1f} MB = "
              f"{served['size_mb'] / (model_size_bytes('full') / 1e6):.2f} of the full model's "
              f"(target <= 0.5: {'met' if small else 'NOT met'})")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": n, "naive_eps": n / t_naive, "naive_qwk": q_naive, "hw": hw,
                                               "served": chosen.name, "why": why, "variants": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
