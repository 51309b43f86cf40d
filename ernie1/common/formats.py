"""The on-disk contract, in one place: every file and folder name the toolkit writes or reads.

Names follow the original ernie-1.0 example and paddlenlp where they exist, so checkpoints, converted weights and
exports stay usable by their tools (REFERENCE §5, §12, §13, §16).
"""

from __future__ import annotations

# Preprocessed corpus: <prefix>_ids.npy + <prefix>_idx.npz (+ our optional <prefix>_knowledge.npz).
IDS_SUFFIX = "_ids.npy"
IDX_SUFFIX = "_idx.npz"
KNOWLEDGE_SUFFIX = "_knowledge.npz"
JSONL_SUFFIX = ".jsonl"
# Cached index maps beside the corpus: <prefix>_<split>_indexmap_..._<key>.npy (ernie1.data.builder.IndexMapSpec).
INDEX_MAP_TAG = "_indexmap"
INDEX_MAP_SUFFIX = ".npy"

# Tokenizer files as paddlenlp saves them.
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE)

# Pretraining checkpoints: output_dir/model_<step> and output_dir/model_last (+ model_last_bak while replacing).
LAST_CHECKPOINT = "model_last"
SNAPSHOT_PREFIX = "model_"
BACKUP_SUFFIX = "_bak"
COMPLETE_MARKER = "COMPLETE"
META_FILE = "config.yml"
MODEL_CONFIG_FILE = "model_config.json"
PADDLENLP_CONFIG_FILE = "config.json"
# A checkpoint directory's model config: ours (and the original's) first, then paddlenlp's.
MODEL_CONFIG_FILES = (MODEL_CONFIG_FILE, PADDLENLP_CONFIG_FILE)
WEIGHTS_FILE = "model_state.pdparams"
SAFETENSORS_WEIGHTS_FILE = "model.safetensors"
WEIGHT_FILES = (WEIGHTS_FILE, SAFETENSORS_WEIGHTS_FILE)
OPTIMIZER_FILE = "model_state.pdopt"
SCALER_FILE = "scaler.pdparams"
RNG_STATE_FILE = "rng_state.pdparams"
# Named checkpoint parts -> their files; any other part `<name>` is stored as `<name>.pdparams`.
CHECKPOINT_PART_FILES = {
    "model": WEIGHTS_FILE,
    "optimizer": OPTIMIZER_FILE,
    "scaler": SCALER_FILE,
    "rng": RNG_STATE_FILE,
}
RESOLVED_CONFIG_FILE = "pretrain_config.json"
# Held (flock) by the run writing into an output_dir; holds that run's PID.
OUTPUT_DIR_LOCK_FILE = ".ernie1.lock"
METRICS_FILE = "metrics.jsonl"
# VisualDL writes one folder per run (a resumed run adds one) under output_dir/runs.
VISUALDL_DIR = "runs"

# Static-graph checkpoints: paddle.static.save(program, <dir>/static_vars) + the structured-name map.
STATIC_VARS_PREFIX = "static_vars"
STATIC_NAME_MAP_FILE = "static_name_map.json"

# paddlenlp Trainer checkpoints: output_dir/checkpoint-<step>.
TRAINER_ARGS_FILE = "training_args.bin"
TRAINER_STATE_FILE = "trainer_state.json"
TRAINER_RNG_STATE_GLOB = "rng_state*.pth"

# Fine-tuning outputs and exports (paddle.jit.save: inference.json under PIR, inference.pdmodel before it).
FINETUNE_CONFIG_FILE = "config.yml"
LABEL_LIST_FILE = "label_list.json"
EXPORT_DIR = "export"
EXPORT_PREFIX = "inference"
EXPORT_CONFIG_FILE = "export_config.json"
EXPORT_MODEL_FILE_PAIRS = (
    ("inference.json", "inference.pdiparams"),
    ("inference.pdmodel", "inference.pdiparams"),
    ("model.pdmodel", "model.pdiparams"),
)
