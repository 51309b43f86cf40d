#!/usr/bin/env bash
# Every step function runs through `check` (in a child of this script), which shellcheck cannot follow.
# shellcheck disable=SC2317
# One-go GPU check of the pretraining toolkit on a lent GPU machine (<= 8 minutes on one GPU; no data packages, no
# network). Prints one line per check, PASS/FAIL with figures, and exits 1 if any check failed. Every step runs
# under `timeout`, inside an overall budget (BUDGET seconds, default 480): a check that would start past it FAILs as
# skipped. Logs stay in WORK (default: a fresh mktemp directory, printed first).
#
#   bash benchmarks/gpu_check.sh              # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry_run    # the same steps on CPU: tiny sizes, no AMP (also run by the tests)
#
# Checks: (1) environment: paddle compiled with CUDA, paddlenlp imports, GPU name; (2) the test suite's GPU-only tests
# (pytest -m gpu); (3) a synthetic Chinese corpus built from the repo alone (synthetic_zh_corpus.py ->
# data_tools/build_vocab.py -> data_tools/create_pretraining_data.py); (4) run_pretrain.py, run_pretrain_static.py and
# run_pretrain_trainer.py under python -m paddle.distributed.launch on 1 GPU with fp16 O1, fp16 O2 and bf16 O2:
# 10 steps, then the same command to 20 steps, which must resume from the 10-step checkpoint; (5) ERNIE-base
# (12x768, vocab 18000) training throughput at seq 128 and 512 for each attention implementation, bf16 O2 and
# fp16 O2 (benchmarks/bench_gpu_throughput.py: seq/s, tokens/s, MFU with the FLOP formula).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

DRY_RUN=0
if [ "${1:-}" = "--dry_run" ]; then
  DRY_RUN=1
  shift
fi
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}
export WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
BUDGET=${BUDGET:-480}

if [ "$DRY_RUN" = 1 ]; then
  DEVICE=cpu
  MODEL_CONFIG=${MODEL_CONFIG:-hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128,max_position_embeddings=128}
  SEQ=${SEQ:-64}
  BATCH=${BATCH:-4}
  DOCS=${DOCS:-120}
  AMP_MODES=${AMP_MODES:-fp32}
  ENTRY_LIMIT=${ENTRY_LIMIT:-120}
  THROUGHPUT_ARGS=(--device cpu --model tiny --seq_len 32 64 --batch_size 2 --amp_dtype none --steps 2 --warmup_steps 1)
  PYTEST_TARGETS=(tests/ernie1/pretrain/test_amp.py)
  unset CUDA_VISIBLE_DEVICES  # even empty, it makes the CPU launcher expect GPUs
  LAUNCH_DEVICES=(--nproc_per_node 1)
else
  DEVICE=gpu
  MODEL_CONFIG=${MODEL_CONFIG:-hidden_size=256,num_hidden_layers=4,num_attention_heads=4,intermediate_size=1024}
  SEQ=${SEQ:-128}
  BATCH=${BATCH:-16}
  DOCS=${DOCS:-600}
  AMP_MODES=${AMP_MODES:-float16-O1 float16-O2 bfloat16-O2}
  ENTRY_LIMIT=${ENTRY_LIMIT:-90}
  THROUGHPUT_ARGS=(--device gpu --model base --seq_len 128 512 --attention_impl paddle sdpa
    --amp_dtype bfloat16 float16 --fp16_opt_level O2 --steps 20 --warmup_steps 5)
  PYTEST_TARGETS=(tests)
  LAUNCH_DEVICES=(--gpus "${GPU:-0}")
fi

# check NAME LIMIT STEP ARGS...: run the function STEP in a child of this script (`__step`) under timeout (LIMIT
# seconds, cut to what the budget has left), its output in WORK/NAME.log; PASS with the last line it printed (its
# figures), or FAIL with the exit status and that line.
check() {
  local name=$1 limit=$2
  shift 2
  local now elapsed left rc last
  now=$(date +%s)
  elapsed=$((now - START))
  left=$((BUDGET - elapsed))
  if [ "$left" -le 5 ]; then
    echo "FAIL $name: skipped, the ${BUDGET}s budget is spent"
    FAILED=1
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout -k 10 "$limit" bash "$0" "${MODE_FLAG[@]}" __step "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  last=$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1)
  elapsed=$(($(date +%s) - now))
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name (${elapsed}s): $last"
    return 0
  fi
  [ "$rc" -eq 124 ] && last="timed out after ${limit}s; $last"
  echo "FAIL $name (${elapsed}s, exit $rc): $last (log: $WORK/$name.log)"
  FAILED=1
  return 1
}

environment() {
  "$PYTHON" - "$DEVICE" <<'PY'
import sys
import paddle
import paddlenlp
device = sys.argv[1]
if device == "gpu":
    if not paddle.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
        sys.exit(f"paddle {paddle.__version__} has no CUDA or sees no GPU: install paddlepaddle-gpu matching the driver")
    name = paddle.device.cuda.get_device_name()
    major, minor = paddle.device.cuda.get_device_capability()
    print(f"paddle {paddle.__version__} (CUDA {paddle.version.cuda()}), paddlenlp {paddlenlp.__version__}, "
          f"GPU {name} (sm {major}.{minor}, bf16 {'yes' if paddle.amp.is_bfloat16_supported() else 'no'})")
else:
    print(f"paddle {paddle.__version__} (CUDA build: {paddle.is_compiled_with_cuda()}), paddlenlp {paddlenlp.__version__}, cpu")
PY
}

gpu_tests() {
  "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu "${PYTEST_TARGETS[@]}" 2>&1 | tail -n 15
  return "${PIPESTATUS[0]}"
}

build_corpus() {
  "$PYTHON" benchmarks/synthetic_zh_corpus.py --output "$WORK/corpus/corpus.jsonl" --docs "$DOCS" &&
    "$PYTHON" data_tools/build_vocab.py --input_path "$WORK/corpus/corpus.jsonl" \
      --output_path "$WORK/corpus/vocab/vocab.txt" &&
    "$PYTHON" data_tools/create_pretraining_data.py --model_name "$WORK/corpus/vocab" \
      --tokenizer_name ErnieTokenizer --input_path "$WORK/corpus/corpus.jsonl" \
      --output_prefix "$WORK/corpus/data/synth" --split_sentences --chinese --cn_whole_word_segment \
      --cn_splited --cn_split_dimer " " --workers 1
}

# entry_flags ENTRY AMP MAX_STEPS OUT: the ENTRY_FLAGS array (args.py flags, or the Trainer's names).
entry_flags() {
  local entry=$1 amp=$2 steps=$3 out=$4 dtype=${2%-*} level=${2##*-}
  local common_model=(--model_name_or_path ernie-1.0 --tokenizer_name_or_path "$WORK/corpus/vocab"
    --model_config "$MODEL_CONFIG" --input_dir "$WORK/corpus/data/synth" --output_dir "$out" --split "90,5,5"
    --seed 1234 --device "$DEVICE")
  if [ "$entry" = trainer ]; then
    ENTRY_FLAGS=("${common_model[@]}" --max_seq_length "$SEQ" --per_device_train_batch_size "$BATCH"
      --per_device_eval_batch_size "$BATCH" --max_steps "$steps" --learning_rate 1e-3 --min_learning_rate 1e-4
      --warmup_ratio 0.1 --logging_steps 5 --eval_steps 10 --eval_iters 2 --save_steps 10 --do_train --do_eval
      --dataloader_num_workers 0 --report_to none --disable_tqdm true)
    [ "$amp" != fp32 ] && ENTRY_FLAGS+=(--"$([ "$dtype" = bfloat16 ] && echo bf16 || echo fp16)" --fp16_opt_level "$level")
  else
    ENTRY_FLAGS=("${common_model[@]}" --max_seq_len "$SEQ" --micro_batch_size "$BATCH" --max_steps "$steps"
      --max_lr 1e-3 --min_lr 1e-4 --warmup_rate 0.1 --logging_freq 5 --eval_freq 10 --eval_iters 2
      --save_steps 0 --checkpoint_steps 10 --num_workers 0)
    [ "$amp" != fp32 ] && ENTRY_FLAGS+=(--use_amp true --amp_dtype "$dtype" --fp16_opt_level "$level")
  fi
  return 0
}

# run_entry ENTRY AMP: 10 steps, then the same command to 20 steps (resumed from the 10-step checkpoint); prints
# the final figures from metrics.jsonl.
run_entry() {
  local entry=$1 amp=$2 script out
  case "$entry" in
    dygraph) script=run_pretrain.py ;;
    static) script=run_pretrain_static.py ;;
    trainer) script=run_pretrain_trainer.py ;;
  esac
  out="$WORK/runs/$entry-$amp"
  for steps in 10 20; do
    entry_flags "$entry" "$amp" "$steps" "$out"
    "$PYTHON" -m paddle.distributed.launch "${LAUNCH_DEVICES[@]}" --log_dir "$out/launch-$steps" "$script" \
      "${ENTRY_FLAGS[@]}" || { tail -n 5 "$out/launch-$steps/workerlog.0" 2>/dev/null; return 1; }
  done
  "$PYTHON" - "$out" <<'PY'
import json, math, sys
from pathlib import Path
records = [json.loads(line) for line in (Path(sys.argv[1]) / "metrics.jsonl").read_text().splitlines() if line.strip()]
starts = [r for r in records if r["split"] == "start"]
train = [r for r in records if r["split"] == "train"]
valid = [r for r in records if r["split"] == "valid"]
if [r["step"] for r in starts] != [0, 10]:
    sys.exit(f"expected a fresh start and a resume at step 10, got start records at {[r['step'] for r in starts]}")
if not train or train[-1]["step"] != 20 or not math.isfinite(train[-1]["loss"]):
    sys.exit(f"no finite loss at step 20: {train[-1:]}")
last = valid[-1] if valid else {}
print(f"{starts[-1]['precision']}, attention {starts[-1]['attention_impl']}: resumed at step 10, step 20 loss "
      f"{train[-1]['loss']:.4f}, valid step {last.get('step')} masked_acc {last.get('masked_accuracy', float('nan')):.4f}")
PY
}

throughput() {
  "$PYTHON" benchmarks/bench_gpu_throughput.py "${THROUGHPUT_ARGS[@]}"
}

MODE_FLAG=()
[ "$DRY_RUN" = 1 ] && MODE_FLAG=(--dry_run)
if [ "${1:-}" = "__step" ]; then
  shift
  "$@"
  exit $?
fi

START=$(date +%s)
FAILED=0
mkdir -p "$WORK"
echo "gpu_check: logs in $WORK$([ "$DRY_RUN" = 1 ] && echo ' (dry run: CPU, tiny sizes, no AMP)')"
check environment 60 environment || {
  echo "gpu_check: the environment check failed; nothing else can run"
  exit 1
}
check gpu-tests 180 gpu_tests
if check corpus 120 build_corpus; then
  for amp in $AMP_MODES; do
    for entry in dygraph static trainer; do
      check "$entry-$amp" "$ENTRY_LIMIT" run_entry "$entry" "$amp"
    done
  done
else
  echo "FAIL entry points: skipped, no corpus"
  FAILED=1
fi
if check throughput 300 throughput; then
  grep -E '^(# FLOPs|throughput )' "$WORK/throughput.log" | sed 's/^/  /'
fi
echo "gpu_check: $([ "$FAILED" = 0 ] && echo 'all checks passed' || echo 'FAILED') in $(($(date +%s) - START))s"
exit "$FAILED"
