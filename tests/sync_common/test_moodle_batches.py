"""One batch-isolation sender for every write: a refused batch is split until the bad record stands alone, and
what Moodle did though its answer was lost or it refused the call (``recover``) is read back, not sent again."""

from __future__ import annotations

import pytest

from moodle_provider.exceptions import MoodleAnswerLostError, MoodleRequestError
from sync_common.moodle_batches import LOST_ANSWERS_PER_BATCH, send_isolating


class Site:
    """A Moodle function run as one transaction: refuses a batch holding a bad item, may lose answers."""

    def __init__(self, bad=(), lose_answers=0, apply_in_part=False):
        self.bad, self.lose_answers, self.apply_in_part = set(bad), lose_answers, apply_in_part
        self.held: list[int] = []
        self.calls = 0

    def write(self, batch: list[dict]) -> None:
        self.calls += 1
        if any(item["n"] in self.bad for item in batch):
            if self.apply_in_part:  # update_users: refuses the call, keeps the good items
                self.held += [item["n"] for item in batch if item["n"] not in self.bad]
            raise MoodleRequestError("Error writing to database", errorcode="invalidparameter")
        self.held += [item["n"] for item in batch]
        if self.lose_answers:
            self.lose_answers -= 1
            raise MoodleAnswerLostError("no answer")

    def read_back(self, batch: list[dict]) -> list[dict]:
        return [item for item in batch if item["n"] in self.held]


ITEMS = [{"n": n} for n in range(8)]


def test_a_bad_record_is_isolated_by_halving_and_its_batch_mates_are_written():
    site, refused = Site(bad={5}), []
    taken = send_isolating(ITEMS, site.write, lambda item, error: refused.append(item["n"]), {"invalidparameter"})
    assert refused == [5] and sorted(site.held) == [0, 1, 2, 3, 4, 6, 7] and len(taken) == 7


def test_a_lost_answer_is_read_back_and_nothing_is_written_twice():
    site = Site(lose_answers=LOST_ANSWERS_PER_BATCH - 1)
    taken = send_isolating(ITEMS, site.write, lambda item, error: None, {"invalidparameter"}, recover=site.read_back)
    assert sorted(site.held) == list(range(8)) and taken == ITEMS and site.calls == 1


def test_answers_lost_again_and_again_leave_the_batch_to_the_tasks_retry():
    site = Site(lose_answers=LOST_ANSWERS_PER_BATCH)
    site.read_back = lambda batch: []  # Moodle did not keep them
    with pytest.raises(MoodleAnswerLostError):
        send_isolating(ITEMS, site.write, lambda item, error: None, {"invalidparameter"}, recover=site.read_back)
    assert site.calls == LOST_ANSWERS_PER_BATCH


def test_a_call_refused_but_applied_in_part_keeps_what_moodle_did_and_isolates_the_rest():
    site, refused = Site(bad={2}, apply_in_part=True), []
    send_isolating(ITEMS, site.write, lambda item, error: refused.append(item["n"]), {"invalidparameter"},
                   recover=site.read_back)
    assert refused == [2] and sorted(site.held) == [0, 1, 3, 4, 5, 6, 7] and site.calls == 2
