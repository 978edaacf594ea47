"""The override grammar of every tool, and typed (de)serialization of flat config dataclasses.

One assignment is `section.field=value`: `section` names a part of the experiment
(`config.SECTIONS`: data, model, train, synthetic, optimize, export), `field` one of its
dataclass fields, and `value` is JSON (`2`, `0.5`, `true`, `[8, 8]`, `[[1088, 1920]]`,
`"text"`) or, when it is not JSON, a plain string (`export.int8_io=uint8`). Each value is
checked against the field's type hint, so `train.epochs=two` is an error naming the field
rather than a crash later. Tools take assignments as repeated `--override=...`
(deepisp_tf/config_flags.py); `config.override` applies them.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Iterable


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a flat dataclass from a dict, checking each value against the field's type."""
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**{key: typed(value, hints[key], f"{cls.__name__}.{key}")
                  for key, value in values.items()})


def typed(value: Any, hint: Any, name: str) -> Any:
    """Return `value` as type `hint` (int, float, bool, str, tuple[...], X | None).

    Raises:
      ValueError: `value` is not of that type (ints are accepted for floats; JSON lists for
        tuples), naming the field.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if args and type(None) in args:                      # X | None
        if value is None:
            return None
        hint = next(arg for arg in args if arg is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(typed(item, args[0], f"{name}[{i}]") for i, item in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{name} must have {len(args)} values, got {value!r}")
        return tuple(typed(item, arg, f"{name}[{i}]")
                     for i, (item, arg) in enumerate(zip(value, args)))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:  # bool is not an int here
        return value
    raise ValueError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def parse_assignment(assignment: str, sections: Iterable[str]) -> tuple[str, str, Any]:
    """Parse one override `section.field=value` into (section, field, value).

    The value is JSON (`2`, `0.5`, `true`, `[8, 8]`, `[[128, 128]]`, `"text"`); anything that is
    not JSON is taken as a string (`export.int8_io=uint8`).

    Raises:
      ValueError: not of the form section.field=value, or an unknown section.
    """
    key, sep, raw_value = assignment.partition("=")
    section, dot, field = key.strip().partition(".")
    if not sep or not dot or not field or "." in field:
        raise ValueError(f"override {assignment!r} is not of the form section.field=value")
    if section not in sections:
        raise ValueError(f"override {assignment!r}: unknown section {section!r}; sections: "
                         f"{', '.join(sections)}")
    try:
        value = json.loads(raw_value)
    except json.JSONDecodeError:
        value = raw_value
    return section, field, value
