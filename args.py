"""The argparse CLI of the dygraph and static scripts over the one flag table (`ernie1.pretrain.flags`).

Fixed traps of the original: `--continue_training` is a real boolean, `max_lr >= min_lr` by default,
`--lr_decay_style` is honoured (linear, cosine, none), `--max_seq_len` defaults to 512 (ERNIE 1.0 has 513 positions),
and `--num_train_epochs` (never used) is refused with a pointer to `--max_steps`.
"""

from __future__ import annotations

import argparse
from typing import Any, ContextManager, List, Optional, Sequence

from ernie1.common.errors import ToolkitError
from ernie1.pretrain.config import PretrainConfig, build_config
from ernie1.pretrain.flags import FLAGS, argparse_flag_name, rendered_field_errors, str2bool

__all__ = [
    "build_parser",
    "config_from_namespace",
    "flag_errors",
    "flag_names",
    "parse_pretraining_args",
    "run_entry",
    "str2bool",
]

_GROUP_TITLES = {
    "model": "model",
    "data": "data",
    "optimisation": "optimisation",
    "cadence": "cadence (global steps)",
    "runtime": "runtime",
}


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line ToolkitErrors instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ToolkitError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with the original's flag names and (fixed) defaults."""
    parser = _Parser(description="ERNIE 1.0 pretraining (dygraph and static graph share these flags).")
    groups = {name: parser.add_argument_group(title) for name, title in _GROUP_TITLES.items()}
    for flag in FLAGS:
        if not flag.in_argparse:
            continue
        options = {
            "type": str2bool if flag.type is bool else flag.type,
            "default": flag.default,
            "help": argparse.SUPPRESS if flag.hidden else flag.help,
        }
        if flag.required:
            options = {"type": options["type"], "required": True, "help": options["help"]}
        if flag.choices:
            options["choices"] = list(flag.choices)
        groups[flag.group].add_argument(argparse_flag_name(flag.name), **options)
    return parser


def flag_errors() -> ContextManager[None]:
    """Inside the block, configuration FieldErrors name this CLI's flags (`--<field>`)."""
    return rendered_field_errors(argparse_flag_name)


def config_from_namespace(ns: argparse.Namespace, world_size: int = 1) -> PretrainConfig:
    """Validate a parsed namespace and derive the typed, frozen config."""
    with flag_errors():
        return build_config(vars(ns), world_size)


def parse_pretraining_args(argv: Optional[Sequence[str]] = None, world_size: Optional[int] = None) -> PretrainConfig:
    """Parse `argv` (None: sys.argv[1:]) into a validated PretrainConfig; errors are one-line ToolkitErrors."""
    from ernie1.pretrain.runtime import launched_world_size

    ns = build_parser().parse_args(None if argv is None else list(argv))
    return config_from_namespace(ns, launched_world_size() if world_size is None else world_size)


def flag_names() -> List[str]:
    """All long flag names (for compatibility tests)."""
    return sorted(option for action in build_parser()._actions for option in action.option_strings)


def run_entry(engine_class: Any, argv: Optional[Sequence[str]] = None) -> int:
    """run_pretrain.py and run_pretrain_static.py: parse -> place this process -> run with their step engine."""
    from ernie1.pretrain.run import run_pretraining
    from ernie1.pretrain.runtime import init_runtime

    with flag_errors():
        config = parse_pretraining_args(argv)
        run_pretraining(config, init_runtime(config.runtime), engine_class)
    return 0
