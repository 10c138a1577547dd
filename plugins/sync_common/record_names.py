"""Names beside the keys of a run's records: the report shows a person's name next to the key support searches by
(an employee number, an External ID). A kind reads them from its run's own extract when the run is summarised
(``IntegrationKind.record_names``), so the report pages need no access to the source. Names only: no e-mail or ID
number is kept."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from sync_common.run_files import RunPath, read_frame


def names_in_run_file(path: RunPath, key: str, parts: Sequence[str],
                      wanted: Collection[str] | None = None) -> dict[str, str]:
    """Record key (lower case) → name (the ``parts`` columns joined) of each row of a run file the source's extract
    left, of the ``wanted`` keys only when given (``named_keys``: a run's report names its records, not everyone
    extracted); {} when the run did not get as far as extracting."""
    if not path.exists():
        return {}
    frame = read_frame(path, [key, *parts])
    if wanted is not None:
        frame = frame[frame[key].astype(str).str.strip().str.lower().isin(list(wanted)).to_numpy(dtype=bool)]
    names = {}
    for row in frame[[key, *parts]].itertuples(index=False):
        record, *words = (str(value).strip() if isinstance(value, str | int) else "" for value in row)
        name = " ".join(word for word in words if word)
        if record and name:
            names[record.lower()] = name
    return names


def _keys_of(record: str) -> tuple[str, str]:
    """The keys a record's name is looked up by: the record, then the record it is named after: 'EE001 / DRV-101',
    'S-1 in SUB-8' and 'EE001, line 3' are EE001's and S-1's (the record history's rule: the key, then a space)."""
    wanted = record.strip().lower()
    return wanted, wanted.split(" ", 1)[0].rstrip(",")


def named_keys(records: Iterable[str | None]) -> set[str]:
    """The keys ``name_of`` looks the names of these records up by."""
    return {key for record in records if record for key in _keys_of(record)}


def name_of(record: str | None, names: Mapping[str, str]) -> str:
    """The name of a record, or of the record it is named after (``_keys_of``)."""
    if not record or not names:
        return ""
    whole, named_after = _keys_of(record)
    return names.get(whole) or names.get(named_after, "")
