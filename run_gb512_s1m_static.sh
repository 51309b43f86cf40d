#!/usr/bin/env bash
# Static-graph (PIR) ERNIE 1.0 pretraining with the original's recipe (task ernie-1.0-dp8-gb512): 8 GPUs x micro
# batch 64 = global batch 512, 1M steps, seq 512, AMP. Every default is an environment variable; extra flags are
# forwarded with "$@" (the last occurrence of a flag wins).
#
#   bash run_gb512_s1m_static.sh                          # 8 GPUs, data in ./data, output/ernie-1.0-dp8-gb512
#   GPUS=0,1 INPUT_DIR=/data/clue bash run_gb512_s1m_static.sh --max_steps 1000
#   IPS=10.0.0.1,10.0.0.2 bash run_gb512_s1m_static.sh   # multi-node: run the same command on every node
#   MASTER=10.0.0.1:8090 NNODES=2 bash run_gb512_s1m_static.sh   # the same with the launcher's rendezvous
#   SMOKE=1 bash run_gb512_s1m_static.sh                  # CPU, tiny model, demo corpus: seconds, no GPU
#   SMOKE=1 NPROC=2 bash run_gb512_s1m_static.sh          # the same with 2 CPU data-parallel processes
set -euo pipefail
cd "$(dirname "$0")"

source scripts/launcher_common.sh
SMOKE=${SMOKE:-0}

if [ "$SMOKE" = "1" ]; then
  prepare_smoke_run run_pretrain_static.py ernie-1.0-static-smoke
  smoke_args_py_flags
  exec "${LAUNCH[@]}" "${SMOKE_FLAGS[@]}" "$@"
fi

TASK_NAME=${TASK_NAME:-ernie-1.0-dp8-gb512}
OUTPUT_DIR=${OUTPUT_DIR:-output/$TASK_NAME}
INPUT_DIR=${INPUT_DIR:-./data}
GPUS=${GPUS:-${DEVICES:-0,1,2,3,4,5,6,7}}
# Data parallel over every GPU of every node.
NUM_NODES=${NNODES:-$(echo "${IPS:-localhost}" | tr ',' '\n' | grep -c .)}
NUM_GPUS=$(( $(echo "$GPUS" | tr ',' '\n' | grep -c .) * NUM_NODES ))
MODEL=${MODEL:-ernie-1.0-base-zh}

# Leftovers of earlier static runs (program dumps, core files), as the original script cleaned them.
rm -rf ./*.prototxt core.* start_sharding* main_sharding*

gpu_nodes
gpu_recipe_flags
exec "$PYTHON" -u -m paddle.distributed.launch "${NODES[@]}" --gpus "$GPUS" --log_dir "$OUTPUT_DIR/log" run_pretrain_static.py \
  "${GPU_FLAGS[@]}" \
  --sharding_degree 1 \
  --dp_degree "$NUM_GPUS" \
  --use_sharding false \
  "$@"
