"""Moodle's form encoding of nested parameters (``users[0][customfields][0][type]=gender``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def flatten_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Turn nested dicts and lists into the flat key/value pairs Moodle's REST server parses."""
    return [pair for key, value in params.items() for pair in _flatten(value, key)]


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}[{key}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    elif value is None:
        return
    elif isinstance(value, bool):
        yield prefix, "1" if value else "0"
    else:
        yield prefix, str(value)
