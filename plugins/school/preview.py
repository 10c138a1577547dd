"""The rollover preview: what the next run would write to Moodle, read from this run's plans (nothing was
written), deletions first, so that the school can check the MIS data before re-enabling synchronisation."""

from __future__ import annotations

from school import class_sync, enrolment_sync, people_sync
from school.course_plan import FLOW as CLASSES
from school.enrolment_plan import FLOW as ENROLMENTS
from school.user_plan import FLOW as PEOPLE
from sync_common.outcomes import Outcome
from sync_common.run_files import RunPath, read_json
from sync_common.step_outputs import step_file, write_outcomes

# What the preview leaves behind: what the next run would write, as outcomes.
PREVIEW = step_file("preview.list")
# The order the preview lists changes in: what cannot be undone first.
PREVIEW_ORDER = ("would_delete", "would_unenrol", "would_remove_role", "would_suspend", "would_create",
                 "would_update", "would_unsuspend", "would_enrol", "would_add_role")

_WOULD_UPDATE = {"suspended": "would_suspend", "unsuspended": "would_unsuspend", "updated": "would_update",
                 "conflict": "would_update"}


def _changed(item: dict) -> str:
    return item.get("reason") or f"would change: {', '.join(item['changed'])}"


def preview_outcomes(people: dict, classes: dict, enrolments: dict) -> list[Outcome]:
    """One outcome per planned write, in ``PREVIEW_ORDER``; a tripped guard is a warning (the run would stop)."""
    found = [Outcome(i["external_id"], "would_delete", f"Moodle user #{i['id']}: {i['reason']}", flow=PEOPLE)
             for i in people["deletes"]]
    found += [Outcome(i["class_external_id"], "would_delete", f"Moodle course #{i['id']}: {i['reason']}",
                      flow=CLASSES) for i in classes["deletes"]]
    found += [Outcome(i["record"], "would_unenrol", i["reason"], flow=ENROLMENTS) for i in enrolments["unenrols"]]
    found += [Outcome(i["record"], "would_remove_role", i["reason"], flow=ENROLMENTS)
              for i in enrolments["unassigns"]]
    found += [Outcome(i["external_id"], _WOULD_UPDATE[i["action"]], _changed(i), flow=PEOPLE)
              for i in people["updates"]]
    found += [Outcome(i["external_id"], "would_create", f"username {i['username']}", flow=PEOPLE)
              for i in people["creates"]]
    found += [Outcome(i["class_external_id"], "would_create", f"{i['shortname']}: format {i['format']}, "
                      f"{'visible' if i['visible'] else 'hidden'}, category #{i['categoryid']}", flow=CLASSES)
              for i in classes["creates"]]
    found += [Outcome(i["class_external_id"], "would_update", _changed(i), flow=CLASSES) for i in classes["updates"]]
    found += [Outcome(i["record"], "would_enrol" if i["action"] == "enrolled" else "would_add_role",
                      f"role #{i['roleid']}", flow=ENROLMENTS) for i in enrolments["enrols"]]
    found.sort(key=lambda outcome: PREVIEW_ORDER.index(outcome.action))
    for flow, plan in ((PEOPLE, people), (CLASSES, classes), (ENROLMENTS, enrolments)):
        if plan["guard"]:
            found.append(Outcome(None, "warning", f"the next run would stop: {plan['guard']}; trigger it with "
                                 "allow_mass_changes=true when these changes are intended",
                                 "school MIS administrator / data engineer", flow))
    return found


def list_preview(run_dir: RunPath) -> dict:
    outcomes = preview_outcomes(*(read_json(run_dir / plan)
                                  for plan in (people_sync.PLAN, class_sync.PLAN, enrolment_sync.PLAN)))
    write_outcomes(run_dir / PREVIEW, outcomes)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    return counts

