"""Reading and checking the YAML files a user hands the server (alert rules, drift settings)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

__all__ = ["check_entry", "read_yaml"]


def read_yaml(path: str | Path, what: str, error: type[ValueError]) -> Any:
    """The parsed document of the ``what`` file at ``path``; ``error`` names the file and the
    reason when it cannot be read or is not YAML."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} file {path} is not valid YAML: {exc}") from exc


def check_entry(where: str, item: Any, known: Collection[str], error: type[ValueError]) -> None:
    """``item`` (at ``where`` in its file) is a mapping with ``known`` keys only; ``error`` names
    the place and the first unknown key otherwise."""
    if not isinstance(item, dict):
        raise error(f"{where}: must be a mapping")
    unknown = set(item) - set(known)
    if unknown:
        raise error(f"{where}.{sorted(unknown)[0]}: unknown field")
