"""Where pip-installed data packages live, found without importing them (DATA.md: some import torch or run code)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional


def package_dir(name: str) -> Optional[Path]:
    """Directory of an installed package, or None when it is not installed."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
