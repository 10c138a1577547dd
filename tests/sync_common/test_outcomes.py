from dataclasses import asdict, fields

from sync_common.outcomes import Outcome, mask_emails


def test_an_outcome_as_a_dict_holds_every_field_as_asdict_gives_it():
    outcome = Outcome("E001", "conflict", "used by #7", "PSIber HR", flow="users")
    assert outcome.to_dict() == asdict(outcome)
    assert list(outcome.to_dict()) == [field.name for field in fields(Outcome)]


def test_emails_are_masked_but_their_domain_kept():
    assert mask_emails("thabo.mokoena@example.com refused") == "t***@example.com refused"
