from moodle_provider.form_encoding import flatten_params


def test_nested_lists_and_dicts_use_moodles_bracket_keys():
    assert flatten_params({
        "users": [{"username": "a", "suspended": True, "customfields": [{"type": "gender", "value": "Male"}]}],
        "field": "idnumber", "values": ["E1", "E2"], "skipped": None,
    }) == [
        ("users[0][username]", "a"), ("users[0][suspended]", "1"),
        ("users[0][customfields][0][type]", "gender"), ("users[0][customfields][0][value]", "Male"),
        ("field", "idnumber"), ("values[0]", "E1"), ("values[1]", "E2"),
    ]
