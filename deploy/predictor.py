"""Load a model exported by `run_*.py --do_export` into a paddle.inference predictor and run padded batches.

An export directory holds `inference.json` (PIR program; a legacy export has `inference.pdmodel` or `model.pdmodel`),
`inference.pdiparams` (`model.pdiparams`), the tokenizer files (`vocab.txt`, …) and `export_config.json`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError

# (program file, parameters file), in order of preference: PIR first, then the legacy layouts a 3.3 predictor loads.
MODEL_FILE_PAIRS = (
    ("inference.json", "inference.pdiparams"),
    ("inference.pdmodel", "inference.pdiparams"),
    ("model.pdmodel", "model.pdiparams"),
)
EXPORT_CONFIG_NAME = "export_config.json"
DEVICES = ("cpu", "gpu")


def add_predictor_flags(parser: argparse.ArgumentParser, batch_size: int) -> None:
    """The flags every deploy script shares: sequence length, batching, device, CPU threads, oneDNN."""
    parser.add_argument("--max_seq_length", type=int, default=None, help="Default: the export's max_seq_length.")
    parser.add_argument("--batch_size", type=int, default=batch_size, help="Inputs per predictor run.")
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None, help="Default: gpu if available, else cpu.")
    parser.add_argument(
        "--cpu_threads", type=int, default=None, help="Math library threads on CPU (default: min(10, CPU count))."
    )
    parser.add_argument(
        "--enable_mkldnn", action="store_true", default=None, help="oneDNN kernels on CPU (Paddle 3's default: on)."
    )
    parser.add_argument(
        "--disable_mkldnn", action="store_false", dest="enable_mkldnn", default=None, help="Plain CPU kernels."
    )


def find_model_files(model_dir: str) -> Tuple[Path, Path]:
    """(program, params) in `model_dir`; a one-line error naming what is missing."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise ToolkitError(f"--model_dir {model_dir}: no such directory; export with run_seq_cls.py --do_export")
    for program_name, params_name in MODEL_FILE_PAIRS:
        program = directory / program_name
        if program.is_file():
            params = directory / params_name
            if not params.is_file():
                raise ToolkitError(
                    f"--model_dir {model_dir}: {params_name} is missing next to {program_name}; re-export"
                )
            return program, params
    raise ToolkitError(f"--model_dir {model_dir}: no inference.json (or .pdmodel); export with run_*.py --do_export")


def read_export_config(model_dir: str) -> Dict[str, Any]:
    """`export_config.json` of an export directory (task, input_names, max_seq_length, labels, ...)."""
    path = Path(model_dir) / EXPORT_CONFIG_NAME
    if not path.is_file():
        raise ToolkitError(f"--model_dir {model_dir}: {EXPORT_CONFIG_NAME} is missing; re-export with --do_export")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ToolkitError(f"{path}: not valid JSON ({error.msg}); re-export with --do_export") from error
    if not isinstance(config, dict) or "task" not in config:
        raise ToolkitError(f"{path}: has no 'task'; re-export with --do_export")
    return config


def resolve_device(device: Optional[str]) -> str:
    """`cpu` or `gpu`; None picks gpu when this Paddle build has CUDA; gpu on a CPU build is an error."""
    import paddle

    has_cuda = paddle.device.is_compiled_with_cuda()
    if device is None:
        return "gpu" if has_cuda else "cpu"
    if device not in DEVICES:
        raise ToolkitError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    if device == "gpu" and not has_cuda:
        raise ToolkitError("--device gpu: this Paddle build has no CUDA support; use --device cpu")
    return device


def default_cpu_threads() -> int:
    """The original's 10 threads, capped at the CPU count: more threads than cores slows every run down."""
    return max(1, min(10, os.cpu_count() or 1))


def create_predictor(
    model_dir: str, device: str = "cpu", cpu_threads: Optional[int] = None, enable_mkldnn: Optional[bool] = None
) -> Any:
    """A paddle.inference predictor for the export in `model_dir` (feed/fetch ops off, IR optimisations on)."""
    from paddle import inference

    program, params = find_model_files(model_dir)
    config = inference.Config(str(program), str(params))
    if device == "gpu":
        config.enable_use_gpu(100, 0)
    else:
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(max(1, int(cpu_threads or default_cpu_threads())))
        # None keeps Paddle's default, which is oneDNN on in 3.x: ~5x faster than without it for a base-size model.
        if enable_mkldnn:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(10)
        elif enable_mkldnn is False:
            config.disable_mkldnn()
    config.switch_use_feed_fetch_ops(False)
    config.disable_glog_info()
    try:
        return inference.create_predictor(config)
    except Exception as error:  # paddle raises RuntimeError/ValueError/OSError subclasses for corrupt files
        message = " ".join(str(error).split())[:160]
        raise ToolkitError(
            f"--model_dir {model_dir}: cannot load the exported model ({message}); re-export"
        ) from error


def load_export_tokenizer(model_dir: str) -> Any:
    """The tokenizer saved next to the exported model."""
    from paddlenlp.transformers import AutoTokenizer, ErnieTokenizer

    directory = Path(model_dir)
    if not (directory / "vocab.txt").is_file():
        raise ToolkitError(f"--model_dir {model_dir}: vocab.txt is missing; re-export with --do_export")
    if (directory / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(directory))
    return ErnieTokenizer(str(directory / "vocab.txt"))


def pad_batch(encoded: Sequence[Dict[str, List[int]]], pad_id: int, names: Sequence[str]) -> Dict[str, np.ndarray]:
    """Right-pad the tokenizer outputs into int64 arrays for `names` (input_ids, token_type_ids, position_ids)."""
    length = max(len(item["input_ids"]) for item in encoded)
    batch: Dict[str, np.ndarray] = {}
    for name in names:
        if name == "position_ids":
            batch[name] = np.tile(np.arange(length, dtype="int64"), (len(encoded), 1))
            continue
        fill = pad_id if name == "input_ids" else 0
        array = np.full((len(encoded), length), fill, dtype="int64")
        for row, item in enumerate(encoded):
            values = item[name]
            array[row, : len(values)] = values
        batch[name] = array
    return batch


@dataclass
class ExportedModel:
    """An exported model ready to predict: predictor, tokenizer and its export_config."""

    model_dir: str
    predictor: Any
    tokenizer: Any
    config: Dict[str, Any]

    @classmethod
    def load(
        cls,
        model_dir: str,
        device: Optional[str] = None,
        cpu_threads: Optional[int] = None,
        enable_mkldnn: Optional[bool] = None,
    ) -> "ExportedModel":
        """Check the export directory, then build the predictor and tokenizer."""
        find_model_files(model_dir)
        config = read_export_config(model_dir)
        tokenizer = load_export_tokenizer(model_dir)
        predictor = create_predictor(model_dir, resolve_device(device), cpu_threads, enable_mkldnn)
        return cls(model_dir, predictor, tokenizer, config)

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def input_names(self) -> List[str]:
        return list(self.predictor.get_input_names())

    def run(self, feeds: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """Run one batch: feeds by input name; returns every output as a numpy array."""
        for name in self.input_names:
            if name not in feeds:
                raise ValueError(f"the exported model needs input {name!r}")
            handle = self.predictor.get_input_handle(name)
            handle.reshape(list(feeds[name].shape))
            handle.copy_from_cpu(np.ascontiguousarray(feeds[name]))
        self.predictor.run()
        return [self.predictor.get_output_handle(name).copy_to_cpu() for name in self.predictor.get_output_names()]

    def encode(
        self, texts: Sequence[str], text_pairs: Optional[Sequence[str]] = None, max_seq_length: Optional[int] = None
    ) -> Dict[str, np.ndarray]:
        """Tokenise (truncating to max_seq_length, default from export_config) and pad a batch for the predictor."""
        length = int(max_seq_length or self.config.get("max_seq_length", 128))
        pairs = text_pairs if text_pairs is not None else [None] * len(texts)
        encoded = [
            self.tokenizer(text=text, text_pair=pair, max_length=length, truncation=True, return_attention_mask=False)
            for text, pair in zip(texts, pairs)
        ]
        return pad_batch(encoded, self.tokenizer.pad_token_id, self.input_names)


def batched(items: Sequence[Any], batch_size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most batch_size items."""
    if batch_size < 1:
        raise ToolkitError(f"--batch_size {batch_size}: must be at least 1")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def classify(
    model: ExportedModel,
    texts: Sequence[str],
    batch_size: int,
    max_seq_length: Optional[int] = None,
    text_pairs: Optional[Sequence[str]] = None,
) -> List[Tuple[str, float]]:
    """(label name, probability) per text for a seq_cls export, in input order."""
    names = model.config.get("label_names") or model.config.get("label_list")
    results: List[Tuple[str, float]] = []
    pairs = list(text_pairs) if text_pairs is not None else None
    for start, chunk in zip(range(0, len(texts), max(1, batch_size)), batched(list(texts), batch_size)):
        chunk_pairs = pairs[start : start + len(chunk)] if pairs is not None else None
        logits = model.run(model.encode(chunk, chunk_pairs, max_seq_length))[0]
        probabilities = softmax(logits.astype("float64"))
        for row in probabilities:
            index = int(np.argmax(row))
            label = names[index] if names and index < len(names) else str(index)
            results.append((label, float(row[index])))
    return results


def read_texts(texts: Iterable[str], input_file: Optional[str]) -> List[str]:
    """Texts from positional arguments, else from --input_file (one per line; `-` reads stdin); blank lines skipped."""
    import sys

    collected = [text for text in texts if text.strip()]
    if input_file:
        if input_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            path = Path(input_file)
            if not path.is_file():
                raise ToolkitError(f"--input_file {input_file}: no such file")
            lines = path.read_text(encoding="utf-8").splitlines()
        collected.extend(line.strip() for line in lines if line.strip())
        if not collected:
            raise ToolkitError(f"--input_file {input_file}: no text in it (one text per line)")
    return collected
