"""The demo DAG run with dag.test(): a quiet second night looks up no linked Moodle account, and an e-mail an
administrator edited in Moodle is corrected on the night that reads every account (full_users_sync)."""

from __future__ import annotations

from test_end_to_end import by_number, demo_run, moodle_user  # noqa: F401 (demo_run: the fixture)

from psiber import user_sync


def test_a_quiet_night_reads_no_linked_account_and_a_full_read_corrects_an_administrators_edit(demo_run,  # noqa: F811
                                                                                                monkeypatch):
    linked_looked_up: list[list] = []
    look_up = user_sync._look_up

    def counted(integration, hook, progress, wanted):
        if "id" in wanted:
            linked_looked_up.append(wanted["id"])
        return look_up(integration, hook, progress, wanted)

    monkeypatch.setattr(user_sync, "_look_up", counted)
    first = demo_run()
    created = by_number(first, "created")
    assert first["state"] == "success" and len(linked_looked_up) == 1 and linked_looked_up[0] == []

    linked_looked_up.clear()
    second = demo_run()
    assert second["state"] == "success" and linked_looked_up == [[]]
    assert second["counts"]["users"]["unchanged"] == len(created)

    edited = sorted(created)[0]
    account = moodle_user(demo_run.moodle, edited)
    wanted_email = account["email"]
    account["email"] = "edited.by.hand@example.com"
    linked_looked_up.clear()
    third = demo_run()
    assert linked_looked_up == [[]] and not by_number(third, "updated")

    linked_looked_up.clear()
    full = demo_run(full_users_sync=True)
    assert len(linked_looked_up[0]) == len(created)
    assert by_number(full, "updated") == {edited: "changed: email"}
    assert moodle_user(demo_run.moodle, edited)["email"] == wanted_email
