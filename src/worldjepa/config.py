"""YAML presets with `key.sub=value` command-line overrides.

A preset is a complete nested mapping: every key a run may use is present, so an override of a key
that does not exist is a typo and is refused with the closest valid names.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml

from worldjepa.errors import UserError

PRESET_DIR = Path(__file__).parent / "configs"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """Load a preset by name (`ijepa_tiny`) or by path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(
            f"config '{name_or_path}' not found; use a YAML file path or one of: {', '.join(preset_names())}"
        )
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"config {path} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise UserError(f"config {path} must be a mapping of sections, got {type(cfg).__name__}")
    return cfg


def apply_overrides(cfg: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `cfg` with `a.b.c=value` overrides applied (values parsed as YAML)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' must look like key.sub=value")
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:i]) or "<top level>"
                options = sorted(node) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, options, n=3)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise UserError(
                    f"unknown config key '{key}': '{part}' is not in {where}; {hint}"
                    f"valid keys there: {', '.join(options)}"
                )
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = _parse_value(key, raw, node[parts[-1]])
    return cfg


def _parse_value(key: str, raw: str, old: Any) -> Any:
    """YAML value of an override, checked against the preset's value it replaces.

    YAML 1.1 reads `2e-4` (no dot) as a string; where the preset holds a number it is read as one.
    """
    value = yaml.safe_load(raw) if raw else ""
    if isinstance(old, dict) and not isinstance(value, dict):
        raise UserError(f"config key '{key}' is a section; set one of its keys instead")
    is_number = isinstance(old, int | float) and not isinstance(old, bool)
    if is_number and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise UserError(f"config key '{key}' takes a number, got '{raw}'") from None
    return value


def build(cls: type, section: dict[str, Any], name: str) -> Any:
    """Instantiate dataclass `cls` from a config section, refusing unknown keys by name."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - fields)
    if unknown:
        raise UserError(
            f"unknown key(s) {', '.join(unknown)} in config section '{name}'; valid keys: {', '.join(sorted(fields))}"
        )
    return cls(**section)
