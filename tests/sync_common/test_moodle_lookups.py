"""Moodle user look-ups in chunks, asked several at a time."""

import threading

import pytest

from sync_common.moodle_batches import LOOKUP_CHUNK, users_by_field


class _Site:
    """Answers each chunk with its users once ``parties`` look-ups are in flight together."""

    def __init__(self, parties: int):
        self.together = threading.Barrier(parties, timeout=20)

    def call(self, wsfunction, field, values):
        self.together.wait()
        return [{"id": value} for value in values]


def test_chunks_are_asked_in_parallel_and_answered_in_order():
    ids = list(range(3 * LOOKUP_CHUNK))
    assert [user["id"] for user in users_by_field(_Site(parties=3), "id", ids, parallel=3)] == ids


def test_a_failed_chunk_stops_the_look_up():
    class Failing:
        asked = 0

        def call(self, wsfunction, field, values):
            Failing.asked += 1
            raise RuntimeError("site down")

    with pytest.raises(RuntimeError):
        list(users_by_field(Failing(), "id", list(range(20 * LOOKUP_CHUNK)), parallel=2))
    assert Failing.asked < 20
