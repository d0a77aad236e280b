"""Typed configuration: dataclass sections, YAML presets that list only what they change, `key.sub=value`
overrides.

Every section of a preset is a dataclass next to the code it configures (`TrainConfig` in the trainer,
`PlannerConfig` beside the planners, ...); its field defaults are the one place a default lives. A preset
(configs/*.yaml) states only what differs from those defaults, as nanoGPT's config files do.
`worldjepa.presets` puts the sections together. Loading a preset fills in the defaults, applies
command-line overrides and checks every key and value before any work starts: an unknown key is refused
with the closest valid names, a value of the wrong type with the type it needs.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from worldjepa.errors import UserError, one_line

PRESET_DIR = Path(__file__).parent / "configs"
T = TypeVar("T")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """The mapping in a preset (by name, `ijepa_tiny`) or in a YAML file (by path)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UserError(
            f"config '{name_or_path}' not found; use a YAML file path or one of: {', '.join(preset_names())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise UserError(f"config {path} is not valid YAML: {one_line(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config {path} must be a mapping of sections, got {type(data).__name__}")
    return data


# ------------------------------------------------------------------ dataclasses from mappings
def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from `data`: every key must be a field, every value of its field's type
    (nested dataclasses are built the same way); a missing key takes the field's default. A section given
    in part keeps the rest of its field's default (e.g. stage 2's own training defaults)."""
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise UserError(f"config section '{where or '<top level>'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(_unknown_key_message(unknown[0], where, fields))
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        default = fields[name].default_factory
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, Mapping) and default is not MISSING:
            value = _merge(to_dict(default()), value)
        values[name] = _coerce(value, hints[name], _join(where, name))
    return cls(**values)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `update` written over it, section by section (lists are replaced whole)."""
    out = dict(base)
    for key, value in update.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def to_dict(obj: Any) -> Any:
    """A dataclass (or nested values) as plain YAML-ready data: tuples become lists."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _unknown_key_message(key: str, where: str, options: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(options), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"unknown config key '{_join(where, key)}': '{key}' is not in {where or '<top level>'}; {hint}"
        f"valid keys there: {', '.join(sorted(options))}"
    )


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(v) for v in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "null"
    if dataclasses.is_dataclass(annotation):
        return "a section"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if annotation in names:
        return names[annotation]
    if origin in (list, tuple):
        return f"a list ({_type_name(typing.get_args(annotation)[0])} each)"
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """`value` as `annotation` (int, float, bool, str, Literal, unions, list / tuple of those, nested
    dataclasses, Any), or a UserError naming the key and the type it takes."""
    if annotation is Any:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else from_dict(annotation, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:  # null is null, not an optional section's defaults
            return None
        sections = [option for option in args if dataclasses.is_dataclass(option)]
        if isinstance(value, Mapping) and len(sections) == 1:  # its own errors name the wrong key
            return from_dict(sections[0], value, key)
        for option in sorted(args, key=lambda a: a is str):  # try str last: "2e-4" is a number first
            try:
                return _coerce(value, option, key)
            except UserError:
                continue
    elif origin is Literal:
        if value in args:
            return value
    elif origin in (list, tuple) and isinstance(value, list | tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"config key '{key}' takes {len(args)} values, got {value!r}")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        items = [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
        return tuple(items) if origin is tuple else items
    elif annotation is type(None):
        if value is None:
            return None
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        number = _as_float(value)
        if number is not None:
            if not math.isfinite(number):
                raise UserError(f"config key '{key}' takes a finite number, got {value!r}")
            return number
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and isinstance(value, annotation):
        return value
    if isinstance(value, Mapping) and not dataclasses.is_dataclass(annotation):
        raise UserError(f"config key '{key}' takes {_type_name(annotation)}, not a section")
    raise UserError(f"config key '{key}' takes {_type_name(annotation)}, got {value!r}")


def _as_float(value: Any) -> float | None:
    """A number, or a string such as "2e-4" (YAML 1.1 reads a number without a dot as a string), as a
    float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):  # not a number, or an integer beyond any float
        return None


# ------------------------------------------------------------------ overrides
def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of the complete mapping `data` with `a.b.c=value` overrides applied (values parsed as YAML).
    Keys must exist in `data` (fill in the defaults first: `to_dict(from_dict(cls, preset))`)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override '{item}' must look like key.sub=value")
        node = data
        parts = key.split(".")
        unchecked = False  # below an optional section turned on here: from_dict checks the keys
        for i, part in enumerate(parts):
            if not unchecked and (not isinstance(node, dict) or part not in node):
                where = ".".join(parts[:i])
                raise UserError(_unknown_key_message(part, where, node if isinstance(node, dict) else {}))
            if i < len(parts) - 1:
                if node.get(part) is None:  # an optional section that is off: setting a key turns it on
                    node[part], unchecked = {}, True
                node = node[part]
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            raise UserError(f"override '{item}': '{raw}' is not a valid YAML value") from None
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict) and value is not None:
            raise UserError(
                f"config key '{key}' is a section; set one of its keys instead (or null to turn it off)"
            )
        node[parts[-1]] = value
    return data
