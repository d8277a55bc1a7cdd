#!/usr/bin/env bash
# Several nodes without SLURM: run this on every node with the same MASTER_ADDR and NODE_RANK set.
#   MASTER_ADDR=10.0.0.1 NODE_RANK=0 NNODES=2 docker/torchrun_multi_node.sh apnea_ecg /shared/data/apnea-ecg
set -euo pipefail
TASK=${1:?task}; ROOT=${2:?data folder}; shift 2
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
.venv/bin/torchrun --nnodes="${NNODES:?}" --node_rank="${NODE_RANK:?}" --nproc_per_node="$GPUS" \
  --master_addr="${MASTER_ADDR:?}" --master_port="${MASTER_PORT:-29500}" \
  -m sleepbench.cli bench --task "$TASK" data.root="$ROOT" \
  trainer.accelerator=gpu trainer.devices="$GPUS" trainer.num_nodes="$NNODES" trainer.strategy=ddp \
  trainer.precision=bf16-mixed "$@"
