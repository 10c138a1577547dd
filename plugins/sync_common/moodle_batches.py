"""Moodle calls cut to the site's limits: look-ups in chunks, writes in batches under PHP's ``max_input_vars``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from moodle.form_encoding import flatten_params
from moodle.hook import MoodleHook

LOOKUP_CHUNK = 200
# wstoken, wsfunction, moodlewsrestformat, and room for a margin: a cut call loses records silently.
_FIXED_INPUT_VARS = 3
_INPUT_VARS_MARGIN = 0.9


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def users_by_field(hook: MoodleHook, field: str, values: Sequence) -> Iterator[dict]:
    """Moodle users whose ``field`` is one of ``values``, asked in chunks Moodle's input limits allow."""
    for chunk in chunks(values, LOOKUP_CHUNK):
        yield from hook.call("core_user_get_users_by_field", field=field, values=list(chunk))


def input_var_batches(items: Sequence[dict], max_items: int, max_vars: int,
                      encode: Callable[[dict], dict]) -> Iterator[list[dict]]:
    """Batches of at most ``max_items`` whose form encoding stays under PHP's ``max_input_vars``:
    past it, PHP drops the tail of a call without an error and Moodle answers as if nothing was lost."""
    room = int(max_vars * _INPUT_VARS_MARGIN) - _FIXED_INPUT_VARS
    batch: list[dict] = []
    used = 0
    for item in items:
        size = len(flatten_params({"items": [encode(item)]}))
        if batch and (len(batch) >= max_items or used + size > room):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += size
    if batch:
        yield batch
