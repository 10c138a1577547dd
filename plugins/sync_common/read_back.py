"""Writes whose answer was lost are never sent again blind: what Moodle now holds is read back first.

The hook never sends a write again once it may have reached Moodle (``MoodleAnswerLostError``). A step then
reads back which of the batch's items Moodle did (``ReadingBack``), takes those as done and sends only the
others; a task's retry reads back everything its plan holds before it sends anything (an earlier try may have
lost its answers). The read-backs of each kind of write are here, so every flow asks Moodle the same way, and
``every_record_answered``: each planned record of an apply that stops gets its outcome (not sent, or in doubt).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

from moodle_provider.exceptions import MoodleAnswerLostError, MoodleRequestError, MoodleTransientError
from moodle_provider.hooks.moodle import MoodleHook
from sync_common.moodle_batches import LOST_ANSWERS_PER_BATCH, users_by_field
from sync_common.outcomes import OWNER_MOODLE_ADMIN, Outcome
from sync_common.refusals import site_refusal

Item = TypeVar("Item", bound=dict)
# The answer ``read_back`` gives for items whose writes answer nothing of their own (updates, deletions, enrolments).
READ_BACK = "read back from Moodle: an earlier answer was lost"
# delete_user() keeps the row: the e-mail becomes an md5 hash and the ID number goes (live Moodle 4.5.6).
_DELETED_EMAIL = re.compile(r"[0-9a-f]{32}")


IN_DOUBT = ("not known to be written: Moodle's answer was lost and it may have done it; the step's retry reads "
            "back what Moodle holds before sending it")
NOT_SENT = "not sent"


@contextmanager
def every_record_answered(planned: list[tuple[str, str]], outcomes: list[Outcome],
                          refused_by_site: Callable[[MoodleRequestError], Exception] = site_refusal,
                          in_doubt: Callable[[], Collection[str]] = frozenset) -> Iterator[None]:
    """Around an apply: if it stops, each planned (record, flow) it never reached gets a 'not sent' outcome, or
    ``IN_DOUBT`` for the records whose answers were lost (``in_doubt``); a refusal of the site's own becomes
    ``refused_by_site`` (a permanent failure)."""
    try:
        yield
    except Exception as error:
        reached, doubtful = {outcome.record for outcome in outcomes}, in_doubt()
        outcomes.extend(Outcome(record, "failed", IN_DOUBT if record in doubtful else
                                f"{NOT_SENT}: the step stopped before this record ({type(error).__name__}); it is "
                                "sent by the next run", OWNER_MOODLE_ADMIN, flow)
                        for record, flow in dict.fromkeys(planned) if record not in reached)
        if isinstance(error, MoodleRequestError):
            raise refused_by_site(error) from error
        raise


class ReadingBack(Generic[Item]):
    """A write ``call`` made safe to lose answers of: sending a batch ``accept``s what Moodle did with it (the
    items and the answer), and never sends an item again once it was accepted.

    When the answer is lost, ``read_back`` says which items Moodle holds as done (and an answer standing for
    Moodle's for them): those are accepted, and only the others are sent again. A refusal of a batch sent again
    after a lost answer may be Moodle's answer to the work it finished meanwhile: it is read back too, and
    raised only for what Moodle does not hold (for ``send_isolating`` to split). Items whose answer stays lost
    (``LOST_ANSWERS_PER_BATCH`` times in a row) or whose read-back fails are left ``in_doubt``: never sent again
    by this try, which goes on with the other batches and then fails (``check``); its retry reads them back
    first (``first``) and sends only what Moodle does not hold.
    """

    def __init__(self, call: Callable[[list[Item]], object],
                 read_back: Callable[[list[Item]], tuple[list[Item], object]],
                 accept: Callable[[list[Item], object], None]):
        self.call, self.read_back, self.accept = call, read_back, accept
        self.in_doubt: list[Item] = []
        self._taken: set[int] = set()

    def first(self, items: list[Item]) -> None:
        """Read back the items an earlier try of the task lost the answers of, and take what Moodle did."""
        if items:
            self._rest(items)

    def __call__(self, batch: list[Item]) -> None:
        lost = 0
        left = {id(item) for item in self.in_doubt} | self._taken
        batch = [item for item in batch if id(item) not in left]
        while batch:
            try:
                answer = self.call(batch)
            except MoodleAnswerLostError:
                lost += 1
                rest = self._rest(batch)
                if rest and lost >= LOST_ANSWERS_PER_BATCH:
                    self.in_doubt.extend(rest)
                    return
                batch = rest or []
                continue
            except MoodleRequestError:
                if not lost:
                    raise
                rest = self._rest(batch)
                if rest is not None and len(rest) == len(batch):
                    raise
                batch = rest or []
                continue
            self._take(batch, answer)
            return

    def check(self) -> None:
        """Fail the try when some items' answers were lost and could not be read back (the retry will)."""
        if self.in_doubt:
            raise MoodleAnswerLostError(
                f"{len(self.in_doubt)} records: Moodle's answer was lost and what it did could not be read back; "
                "the task's retry reads them back before sending anything again")

    def _take(self, items: list[Item], answer: object) -> None:
        self._taken.update(id(item) for item in items)
        self.accept(items, answer)

    def _rest(self, batch: list[Item]) -> list[Item] | None:
        """Take what Moodle holds as done; the items it does not, or None when it could not be read (in doubt)."""
        try:
            done, answer = self.read_back(batch)
        except MoodleTransientError:
            self.in_doubt.extend(batch)
            return None
        if done:
            self._take(done, answer)
        return [item for item in batch if item not in done]


def said(reason: str, answer: object) -> str:
    """An outcome's reason, saying when what Moodle did was read back rather than answered."""
    if answer != READ_BACK:
        return reason
    return f"{reason}; {READ_BACK}" if reason else READ_BACK


def warnings_of(answer: object) -> list[dict]:
    """The warnings of a per-item write's answer (none when it was read back)."""
    return answer.get("warnings", []) if isinstance(answer, dict) else []


def holds(user: dict, item: dict, fields: Iterable[str]) -> bool:
    """Whether a Moodle user (as ``get_users_by_field`` answers) already holds an update's ``fields``."""
    for name in fields:
        if name == "suspended":
            if bool(user.get("suspended")) != bool(item["suspended"]):
                return False
        elif str(user.get(name) or "").casefold() != str(item[name]).casefold():
            return False
    return True


def looks_deleted(user: dict) -> bool:
    """An account Moodle deleted: ``get_users_by_field(id)`` still answers its row, without ID number and
    with an md5 hash for e-mail."""
    return not user.get("idnumber") and bool(_DELETED_EMAIL.fullmatch(str(user.get("email") or "")))


def users_created(hook: MoodleHook, items: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """The items Moodle already has an account for, with their username and ID number, and an answer as
    ``core_user_create_users`` gives (id and username of each)."""
    found = {user["username"]: user for user in users_by_field(hook, "username", [i["username"] for i in items])}
    done = [item for item in items
            if item["username"] in found and found[item["username"]].get("idnumber") == item["idnumber"]]
    return done, [{"id": int(found[item["username"]]["id"]), "username": item["username"], "read_back": True}
                  for item in done]


def users_by_id(hook: MoodleHook, items: Sequence[dict]) -> dict[int, dict]:
    return {int(user["id"]): user for user in users_by_field(hook, "id", [item["id"] for item in items])}


def users_updated(hook: MoodleHook, items: Sequence[dict]) -> tuple[list[dict], str]:
    """The update items whose changes Moodle already holds."""
    now = users_by_id(hook, items)
    return [item for item in items if item["id"] in now and holds(now[item["id"]], item, item["changed"])], READ_BACK


def users_deleted(hook: MoodleHook, items: Sequence[dict]) -> tuple[list[dict], str]:
    """The items whose account Moodle no longer has, or holds as deleted."""
    now = users_by_id(hook, items)
    return [item for item in items if item["id"] not in now or looks_deleted(now[item["id"]])], READ_BACK


def courses_now(hook: MoodleHook, ids: Iterable[int] | None = None) -> list[dict]:
    """Moodle's courses (those of ``ids`` only, when given: unknown ids are simply absent)."""
    return hook.call("core_course_get_courses", **({"options": {"ids": sorted(ids)}} if ids is not None else {}))


def enrolled_roles(hook: MoodleHook, course_ids: Iterable[int]) -> dict[int, dict[int, set[int]]]:
    """Course id → user id → role ids, of everyone enrolled in each course, by any method."""
    roles: dict[int, dict[int, set[int]]] = {}
    for course_id in sorted(set(course_ids)):
        users = hook.call("core_enrol_get_enrolled_users", courseid=course_id,
                          options=[{"name": "userfields", "value": "id,roles"}])
        roles[course_id] = {int(user["id"]): {int(role["roleid"]) for role in user.get("roles", [])}
                            for user in users}
    return roles
