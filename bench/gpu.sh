#!/usr/bin/env bash
# bench/gpu.sh: the grading and compression tables of `make bench` on a CUDA machine, in one short run,
# written to files, so a lent GPU is used once and briefly (the device tool: one command, ~5 minutes).
#
#   bash bench/gpu.sh [OUT_DIR]          # default: $OUT when set (the device tool's folder), else var/bench-gpu
#
# What it needs there (a GPU image has torch, transformers, safetensors, scikit-learn, joblib; nothing can be
# fetched): the ASAP files in $EDUQ_ASAP_DIR (default shared/data/asap inside the checkout, which travels
# with the tree) and, where the image lacks them, the project's other wheels in shared/wheels (pip installs
# them offline with --no-deps). No Postgres or Redis there: the model paths are measured, the platform column
# is skipped (`--skip-platform`); the platform's own ceiling is the CPU machine's `make bench-platform`.
# On CUDA the choice is `l4` then `full` (workers/ml/variants.py: bf16 on the GPU; the int8 variants are CPU
# kernels and are not run).
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
