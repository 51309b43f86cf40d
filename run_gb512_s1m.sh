#!/usr/bin/env bash
# Dygraph ERNIE 1.0 pretraining with the original's recipe (task ernie-1.0-dp8-gb512): 8 GPUs x micro batch 64 =
# global batch 512, 1M steps, seq 512, AMP O2. Every default is an environment variable; extra flags are forwarded
# with "$@" (the last occurrence of a flag wins).
#
#   bash run_gb512_s1m.sh                                   # 8 GPUs, data in ./data, output/ernie-1.0-dp8-gb512
#   DEVICES=0,1 INPUT_DIR=/data/clue bash run_gb512_s1m.sh --max_steps 1000
#   IPS=10.0.0.1,10.0.0.2 bash run_gb512_s1m.sh             # multi-node: run the same command on every node
#   MASTER=10.0.0.1:8090 NNODES=2 bash run_gb512_s1m.sh   # the same with the launcher's rendezvous
#   SMOKE=1 bash run_gb512_s1m.sh      (or: bash run_gb512_s1m.sh --smoke)   # CPU, tiny model, seconds
#   SMOKE=1 NPROC=2 bash run_gb512_s1m.sh                   # the same with 2 CPU data-parallel processes
set -euo pipefail
cd "$(dirname "$0")"

source scripts/launcher_common.sh
SMOKE=${SMOKE:-0}
if [ "${1:-}" = "--smoke" ]; then
  SMOKE=1
  shift
fi

if [ "$SMOKE" = "1" ]; then
  prepare_smoke_run run_pretrain.py ernie-1.0-smoke
  smoke_args_py_flags
  exec "${LAUNCH[@]}" "${SMOKE_FLAGS[@]}" "$@"
fi

TASK_NAME=${TASK_NAME:-ernie-1.0-dp8-gb512}
OUTPUT_DIR=${OUTPUT_DIR:-output/$TASK_NAME}
INPUT_DIR=${INPUT_DIR:-./data}
DEVICES=${DEVICES:-${GPUS:-0,1,2,3,4,5,6,7}}
MODEL=${MODEL:-ernie-1.0-base-zh}
# Multi-node: IPS=ip1,ip2,... and the same command on every node (paddle.distributed.launch --ips).
gpu_nodes
gpu_recipe_flags

exec "$PYTHON" -u -m paddle.distributed.launch "${NODES[@]}" --gpus "$DEVICES" --log_dir "$OUTPUT_DIR/log" \
  run_pretrain.py \
  "${GPU_FLAGS[@]}" \
  --fp16_opt_level "${FP16_OPT_LEVEL:-O2}" \
  --share_folder "${SHARE_FOLDER:-false}" \
  "$@"
