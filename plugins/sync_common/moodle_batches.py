"""Moodle calls cut to the site's limits: look-ups in chunks, writes in batches under PHP's ``max_input_vars``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from moodle_provider.exceptions import MoodleAnswerLostError, MoodleRequestError
from moodle_provider.form_encoding import flatten_params
from moodle_provider.hooks.moodle import MoodleHook
from sync_common.refusals import RefusalStreak

LOOKUP_CHUNK = 200
# Lost answers in a row after which a batch is left to the task's retry (which reads back first).
LOST_ANSWERS_PER_BATCH = 4
# wstoken, wsfunction, moodlewsrestformat, and room for a margin: a cut call loses records silently.
_FIXED_INPUT_VARS = 3
_INPUT_VARS_MARGIN = 0.9


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def users_by_field(hook: MoodleHook, field: str, values: Sequence, parallel: int = 1) -> Iterator[dict]:
    """Moodle users whose ``field`` is one of ``values``, asked in chunks Moodle's input limits allow,
    ``parallel`` chunks at a time (a large look-up waits on Moodle far longer than it works itself)."""
    if parallel == 1:
        for chunk in chunks(values, LOOKUP_CHUNK):
            yield from hook.call("core_user_get_users_by_field", field=field, values=list(chunk))
        return
    with ThreadPoolExecutor(parallel) as pool:
        answers = [pool.submit(hook.call, "core_user_get_users_by_field", field=field, values=list(chunk))
                   for chunk in chunks(values, LOOKUP_CHUNK)]
        try:
            for answer in answers:
                yield from answer.result()
        finally:
            pool.shutdown(cancel_futures=True)  # a failed chunk stops the look-up: ask no more


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


def send_isolating(batch: list[dict], call: Callable[[list[dict]], object],
                   refuse: Callable[[dict, MoodleRequestError], None], record_errors: Collection[str],
                   named_by: Callable[[MoodleRequestError, list[dict]], list[dict]] = lambda error, batch: [],
                   streak: RefusalStreak | None = None, recover: Callable[[list[dict]], list[dict]] | None = None,
                   lost: int = 0) -> list[dict]:
    """Send a batch to a function Moodle runs as one transaction (the first bad item fails the call and keeps
    nothing), so that one bad item never fails its batch-mates; returns the items Moodle took.

    On a refusal of the records' own (``record_errors``), the items Moodle did anyway (``recover``: reads them
    back and accepts them; update_users may refuse a call yet apply part of it) are kept and the others sent
    again; else the items the error names (``named_by``: say the course its message gives) are refused and the
    others sent again; otherwise the batch is halved until the bad item stands alone, and that item is refused
    (``refuse``). Any other error is the site's and is raised. With ``recover``, a lost answer is read back too
    and only the rest sent again, until ``LOST_ANSWERS_PER_BATCH`` answers in a row are lost. Each refusal goes
    through the step's ``streak`` (this batch's own if none is given): records refused alike in a row are the
    site's refusal (sync_common.refusals), not theirs.
    """
    if streak is None:
        with RefusalStreak("write these records") as streak:
            return send_isolating(batch, call, refuse, record_errors, named_by, streak, recover)
    again = partial(send_isolating, call=call, refuse=refuse, record_errors=record_errors, named_by=named_by,
                    streak=streak, recover=recover)
    refusals = streak.refusals
    try:
        call(batch)
    except MoodleAnswerLostError:  # Moodle may have done the work: read it back before sending the rest
        if recover is None or lost + 1 >= LOST_ANSWERS_PER_BATCH:
            raise
        done = recover(batch)
        rest = [item for item in batch if item not in done]
        return done + (again(rest, lost=lost + 1) if rest else [])
    except MoodleRequestError as error:
        if error.errorcode not in record_errors:
            raise
        done = recover(batch) if recover else []
        if done:
            rest = [item for item in batch if item not in done]
            return done + (again(rest) if rest else [])
        named = named_by(error, batch)
        if named:
            for item in named:
                streak.refused(error.errorcode, error.moodle_message, partial(refuse, item, error))
            rest = [item for item in batch if item not in named]
            return again(rest) if rest else []
        if len(batch) == 1:
            streak.refused(error.errorcode, error.moodle_message, partial(refuse, batch[0], error))
            return []
        middle = len(batch) // 2
        return again(batch[:middle]) + again(batch[middle:])
    if streak.refusals == refusals:  # else ``call`` fed the streak what Moodle took and refused, item by item
        streak.accepted()
    return batch


def moodle_entry(item: dict, plan_only: Collection[str]) -> dict:
    """A plan entry as Moodle takes it: without the keys that are the plan's own (record labels, action)."""
    return {key: value for key, value in item.items() if key not in plan_only}
