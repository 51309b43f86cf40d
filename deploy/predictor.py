"""Load a model exported by `run_*.py --do_export` into a paddle.inference predictor and run padded batches.

An export directory holds `inference.json` (PIR program; a legacy export has `inference.pdmodel` or `model.pdmodel`),
`inference.pdiparams` (`model.pdiparams`), the tokenizer files (`vocab.txt`, …) and `export_config.json`. What the
inputs and outputs mean is the task's business (`ernie1.tasks`): this module only feeds and fetches arrays.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ernie1.common.errors import ToolkitError
from ernie1.common.formats import EXPORT_CONFIG_FILE, EXPORT_MODEL_FILE_PAIRS, VOCAB_FILE
from ernie1.tasks import TASK_MODULES, get_task
from ernie1.tasks.outputs import load_tokenizer_dir, read_export_config
from ernie1.tasks.spec import EvalSet, Outputs, Split, TaskSettings, TaskSpec, check_max_seq_length

DEVICES = ("cpu", "gpu")


def add_predictor_flags(parser: argparse.ArgumentParser, batch_size: int) -> None:
    """The flags every deploy script shares: sequence length, batching, device, CPU threads, oneDNN."""
    parser.add_argument(
        "--max_seq_length",
        type=int,
        default=None,
        help="Default: the export's; at most its max_position_embeddings.",
    )
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
    for program_name, params_name in EXPORT_MODEL_FILE_PAIRS:
        program = directory / program_name
        if program.is_file():
            params = directory / params_name
            if not params.is_file():
                raise ToolkitError(
                    f"--model_dir {model_dir}: {params_name} is missing next to {program_name}; re-export"
                )
            return program, params
    raise ToolkitError(f"--model_dir {model_dir}: no inference.json (or .pdmodel); export with run_*.py --do_export")


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
    if not (Path(model_dir) / VOCAB_FILE).is_file():
        raise ToolkitError(f"--model_dir {model_dir}: vocab.txt is missing; re-export with --do_export")
    return load_tokenizer_dir(Path(model_dir))


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


def batched(items: Sequence[Any], batch_size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most batch_size items."""
    if batch_size < 1:
        raise ToolkitError(f"--batch_size {batch_size}: must be at least 1")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


@dataclass
class ExportedModel:
    """An exported model ready to predict: predictor, tokenizer, its export_config and its task."""

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
        config = read_export_config(Path(model_dir), f"--model_dir {model_dir}")
        if config["task"] not in TASK_MODULES:
            raise ToolkitError(f"--model_dir {model_dir}: unknown task {config['task']!r} in {EXPORT_CONFIG_FILE}")
        tokenizer = load_export_tokenizer(model_dir)
        predictor = create_predictor(model_dir, resolve_device(device), cpu_threads, enable_mkldnn)
        return cls(model_dir, predictor, tokenizer, config)

    @property
    def task(self) -> TaskSpec:
        """The task the model was fine-tuned for."""
        return get_task(self.config["task"])

    @property
    def input_names(self) -> List[str]:
        return list(self.predictor.get_input_names())

    def settings(self, max_seq_length: Optional[int] = None) -> TaskSettings:
        """The export's task settings, with `max_seq_length` overridden when given (checked against the positions)."""
        settings = TaskSettings.from_dict(self.config)
        if max_seq_length is not None:
            if max_seq_length < 8:
                raise ToolkitError(f"--max_seq_length {max_seq_length} is too small; use at least 8")
            settings = replace(settings, max_seq_length=max_seq_length)
        source = str(Path(self.model_dir) / EXPORT_CONFIG_FILE)
        limit = self.config.get("max_position_embeddings")
        check_max_seq_length(settings.max_seq_length, limit, "--max_seq_length", source)
        return settings

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

    def eval_set(self, items: Sequence[Any], settings: TaskSettings) -> EvalSet:
        """The task's features of deployment inputs (texts; {context, question} for QA)."""
        task = self.task
        examples = [task.inference_example(item, index) for index, item in enumerate(items)]
        return task.eval_set(Split(examples, "input"), self.tokenizer, settings)

    def encode(self, items: Sequence[Any], max_seq_length: Optional[int] = None) -> Dict[str, np.ndarray]:
        """One padded batch of the inputs' features."""
        inputs = self.eval_set(items, self.settings(max_seq_length)).inputs(with_labels=False)
        return pad_batch(inputs, self.tokenizer.pad_token_id, self.input_names)

    def predict(self, items: Sequence[Any], batch_size: int, settings: TaskSettings) -> Tuple[EvalSet, List[Any]]:
        """(eval set, one decoded prediction per item): features run `batch_size` at a time, rows kept per feature."""
        eval_set = self.eval_set(items, settings)
        rows: List[List[np.ndarray]] = []
        for chunk in batched(eval_set.inputs(with_labels=False), batch_size):
            outputs = self.run(pad_batch(chunk, self.tokenizer.pad_token_id, self.input_names))
            rows = rows or [[] for _ in outputs]
            for collected, output in zip(rows, outputs):
                collected.extend(output)
        predictions: Outputs = tuple(rows)
        return eval_set, eval_set.decode(predictions)
