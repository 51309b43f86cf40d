#!/usr/bin/env bash
# ERNIE 1.0 pretraining through the paddlenlp Trainer with the original's recipe (task ernie-1.0-dp8-gb512):
# 8 GPUs x per-device batch 64 = global batch 512, 1M steps, seq 512, fp16 O2. Every default is an environment
# variable; extra flags are forwarded with "$@" (the last occurrence of a flag wins).
#
#   bash run_gb512_s1m_trainer.sh                                # 8 GPUs, data in ./data, output/ernie-1.0-dp8-gb512-trainer
#   DEVICES=0,1 INPUT_DIR=/data/clue bash run_gb512_s1m_trainer.sh --max_steps 1000
#   IPS=10.0.0.1,10.0.0.2 bash run_gb512_s1m_trainer.sh          # multi-node: run the same command on every node
#   MASTER=10.0.0.1:8090 NNODES=2 bash run_gb512_s1m_trainer.sh   # the same with the launcher's rendezvous
#   SMOKE=1 bash run_gb512_s1m_trainer.sh   (or: bash run_gb512_s1m_trainer.sh --smoke)   # CPU, tiny model, seconds
#   SMOKE=1 NPROC=2 bash run_gb512_s1m_trainer.sh                # the same with 2 CPU data-parallel processes
#
# A rerun resumes from the newest complete output_dir/checkpoint-<step>; pass --overwrite_output_dir to start over.
# Unlike the original script, --do_eval is passed: without it the Trainer ignored --eval_steps and never evaluated.
set -euo pipefail
cd "$(dirname "$0")"

source scripts/launcher_common.sh
SMOKE=${SMOKE:-0}
if [ "${1:-}" = "--smoke" ]; then
  SMOKE=1
  shift
fi

if [ "$SMOKE" = "1" ]; then
  prepare_smoke_run run_pretrain_trainer.py ernie-1.0-smoke-trainer
  exec "${LAUNCH[@]}" \
    --model_type ernie \
    --model_name_or_path ernie-1.0 \
    --tokenizer_name_or_path "$VOCAB_DIR" \
    --model_config "${MODEL_CONFIG:-hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128,max_position_embeddings=128}" \
    --input_dir "$INPUT_DIR" \
    --output_dir "$OUTPUT_DIR" \
    --split "${SPLIT:-90,5,5}" \
    --max_seq_length "${MAX_SEQ_LENGTH:-128}" \
    --per_device_train_batch_size "${MICRO_BATCH_SIZE:-8}" \
    --per_device_eval_batch_size "${MICRO_BATCH_SIZE:-8}" \
    --learning_rate "${LEARNING_RATE:-0.001}" \
    --min_learning_rate "${MIN_LEARNING_RATE:-0.0001}" \
    --max_steps "${MAX_STEPS:-20}" \
    --save_steps "${SAVE_STEPS:-10}" \
    --warmup_ratio "${WARMUP_RATIO:-0.1}" \
    --logging_steps "${LOGGING_STEPS:-5}" \
    --eval_steps "${EVAL_STEPS:-10}" \
    --eval_iters "${EVAL_ITERS:-2}" \
    --dataloader_num_workers "${NUM_WORKERS:-0}" \
    --report_to "${REPORT_TO:-none}" \
    --disable_tqdm true \
    --device cpu \
    --do_train \
    --do_eval \
    "$@"
fi

TASK_NAME=${TASK_NAME:-ernie-1.0-dp8-gb512-trainer}
OUTPUT_DIR=${OUTPUT_DIR:-output/$TASK_NAME}
INPUT_DIR=${INPUT_DIR:-./data}
DEVICES=${DEVICES:-${GPUS:-0,1,2,3,4,5,6,7}}
MODEL=${MODEL:-ernie-1.0-base-zh}
# Multi-node: IPS=ip1,ip2,... and the same command on every node (paddle.distributed.launch --ips).
gpu_nodes

exec "$PYTHON" -u -m paddle.distributed.launch "${NODES[@]}" --gpus "$DEVICES" --log_dir "$OUTPUT_DIR/log" \
  run_pretrain_trainer.py \
  --model_type ernie \
  --model_name_or_path "$MODEL" \
  --tokenizer_name_or_path "${TOKENIZER:-$MODEL}" \
  --input_dir "$INPUT_DIR" \
  --output_dir "$OUTPUT_DIR" \
  --split "${SPLIT:-949,50,1}" \
  --max_seq_length "${MAX_SEQ_LENGTH:-512}" \
  --per_device_train_batch_size "${MICRO_BATCH_SIZE:-64}" \
  --per_device_eval_batch_size "${EVAL_BATCH_SIZE:-64}" \
  --fp16 "${FP16:-true}" \
  --bf16 "${BF16:-false}" \
  --fp16_opt_level "${FP16_OPT_LEVEL:-O2}" \
  --attention_impl "${ATTENTION_IMPL:-auto}" \
  --learning_rate "${LEARNING_RATE:-0.0001}" \
  --min_learning_rate "${MIN_LEARNING_RATE:-0.00001}" \
  --max_steps "${MAX_STEPS:-1000000}" \
  --save_steps "${SAVE_STEPS:-50000}" \
  --weight_decay "${WEIGHT_DECAY:-0.01}" \
  --warmup_ratio "${WARMUP_RATIO:-0.01}" \
  --max_grad_norm "${MAX_GRAD_NORM:-1.0}" \
  --logging_steps "${LOGGING_STEPS:-20}" \
  --dataloader_num_workers "${NUM_WORKERS:-4}" \
  --eval_steps "${EVAL_STEPS:-1000}" \
  --report_to "${REPORT_TO:-visualdl}" \
  --disable_tqdm true \
  --share_folder "${SHARE_FOLDER:-false}" \
  --device gpu \
  --do_train \
  --do_eval \
  "$@"
