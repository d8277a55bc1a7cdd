#!/usr/bin/env bash
# One node, all its GPUs, DDP (Lightning launches one process per GPU).
#   docker/run_multi_gpu.sh apnea_ecg /data/apnea-ecg trainer.max_epochs=25
set -euo pipefail
TASK=${1:?task}; ROOT=${2:?data folder}; shift 2
docker run --gpus all --ipc=host --rm \
  -v "$ROOT":/data/in:ro -v "$PWD/results":/opt/sleepbench/results -v "$PWD/runs":/opt/sleepbench/runs \
  -v "${SLEEPBENCH_CACHE:-$HOME/.cache/sleepbench}":/cache \
  -e WANDB_API_KEY="${WANDB_API_KEY:-}" \
  sleepbench bench --task "$TASK" data.root=/data/in \
  trainer.accelerator=gpu trainer.devices=-1 trainer.strategy=ddp trainer.precision=bf16-mixed "$@"
