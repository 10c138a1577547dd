"""Validate extracted frames with Great Expectations (GX Core 1.x) suites: the mechanism every flow
shares; each flow declares its own rules, in its source system's package.

Every rule is a GX expectation and the per-record reasons are read back from GX's
COMPLETE result (``unexpected_index_list``), so the rules live in declarative suites
instead of being re-implemented in pandas. One generic mechanism, ``validate_frame``,
serves every frame: each frame only declares its rules, its record label and who can
fix a bad record.

Memory stays bounded however long the frame: GX copies the frame it is handed once per rule
(each map metric filters it), so the rules that judge a row by itself (``_ROW_WISE``) run at most
``CHUNK_ROWS`` rows at a time. A uniqueness check compares each row with all others: it is handed
only the rows whose value is repeated (a frame without repeats needs no run). GX is always handed
only the columns its rules read, and its text checks keep their strings out of pyarrow (see
``_failed_positions``). Rows a caller knows met the rules unchanged (``checked_before``) skip the
row-wise rules: a quiet night hands GX only the rows that changed or never met them.

GX runs fully in memory: an ephemeral context with in-memory stores, no data-docs
site (the default ephemeral context would reserve a temporary directory for one) and
no progress bars (they would spam the Airflow task log). GX 1.24 has no usage
statistics left to send (its ``analytics``/posthog package is gone), but
``analytics_enabled=False`` is still set in the project config, which is where
earlier 1.x releases looked first, so a version change cannot quietly turn it on.

GX is imported inside the functions: it takes about 2 s and some 120 MiB of a process to
import (it brings scipy, altair and boto3 along), and the DAG file imports this module (via
user_sync) on every parse, so every task process would carry it, not only the validating ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from string import Formatter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# GX logs at INFO what only its developers need: on import its public-API registry
# (great_expectations._docs_decorators) some 200 "Skipping registering function" lines, its metric
# registry and fluent-datasource config a few more. They would bury each validating task's own lines;
# GX's warnings still show.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

# COMPLETE is the only format that lists every failing row, not just a sample of 20.
# Without unexpected_index_column_names the pandas engine reports the index labels of the
# failing rows; validating a copy with a 0..n-1 index makes those labels row positions,
# which map back to exactly one row even if a source ever repeats a key.
_RESULT_FORMAT = {"result_format": "COMPLETE"}

# The keyword arguments through which GX expectations name the columns they read.
_COLUMN_ARGUMENTS = ("column", "column_A", "column_B")

# Rows GX is handed at once for the row-wise rules. Each run costs GX's fixed overhead (~0.15 s CPU for the
# employee rules), so a chunk holds 10,000 employees' changed rows in one run; beyond it a run's copies no longer
# grow with the frame.
CHUNK_ROWS = 10_000

# GX expectations whose verdict on a row reads that row alone (their row_condition too), so they can run on any
# slice of a frame; any other expectation sees the whole frame.
_ROW_WISE = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_value_lengths_to_be_between",
    "expect_column_pair_values_a_to_be_greater_than_b",
})
_UNIQUE = "expect_column_values_to_be_unique"


@dataclass(frozen=True)
class RecordProblem:
    """One record that cannot be synced, why, and who has to correct it at the source."""

    record: str
    reasons: tuple[str, ...]
    owner: str


@dataclass(frozen=True)
class FrameValidation:
    """The outcome of validating one frame.

    ``valid`` and ``rejected`` are the original rows (values, columns, index untouched);
    ``rejected`` lines up with ``invalid`` row for row, so a caller can map a problem
    back to its row's keys.
    """

    valid: pd.DataFrame
    invalid: tuple[RecordProblem, ...]
    checked: int
    rejected: pd.DataFrame

    @property
    def invalid_share(self) -> float:
        """Share of checked records that were rejected (0.0 for an empty frame), so the
        caller can stop a sync when a bad extract would otherwise do a lot of harm."""
        return len(self.invalid) / self.checked if self.checked else 0.0


def normalised_key(value) -> str | None:
    """How a key reaches Moodle and is compared there: without surrounding spaces, in any letter case."""
    if not isinstance(value, str) and (value is None or pd.isna(value)):
        return None
    return str(value).strip().casefold() or None


def normalised_keys(values: pd.Series) -> pd.Series:
    """``normalised_key`` of each value, kept as Python strings: ``Series.map`` would store them in pyarrow, whose
    memory pool keeps what it once held (see ``_failed_positions``)."""
    return pd.Series([normalised_key(value) for value in values], index=values.index, dtype=object)


def rule(expectation: type[Expectation], reason: str, **kwargs: Any) -> Expectation:
    """A GX expectation carrying its reason in ``meta["reason"]``, so a result maps back to
    its reason without relying on result order."""
    return expectation(meta={"reason": reason}, **kwargs)


def validate_frame(
    frame: pd.DataFrame,
    rules: Callable[[], Iterable[Expectation]],
    record_column: str,
    owner: str,
    *,
    unnamed: str = "",
    checked_before: np.ndarray | None = None,
) -> FrameValidation:
    """Split a frame into valid rows and problems, one per bad row with all its reasons.

    ``rules`` builds the expectations (each made with ``rule``); it is a factory because an
    expectation can belong to only one suite and an empty frame then needs no GX at all.
    A problem's record is the row's ``record_column`` or, when that is missing, the
    ``unnamed`` template filled from the row (e.g. "Moodle course #{id}"). Blank strings
    count as missing for the checks only. ``checked_before`` (a boolean per row): rows that met these rules
    unchanged before, which the row-wise rules then skip; the rules that compare rows still see every row (those
    with repeated values), so a frame of such rows without repeats costs no GX run at all.
    """
    if len(frame) == 0:
        return FrameValidation(valid=frame.copy(), invalid=(), checked=0, rejected=frame.copy())
    expectations = list(rules())
    reasons = [(expectation.meta or {})["reason"] for expectation in expectations]  # rule() gives each one
    named_by = [record_column, *sorted(_template_fields(unnamed, *reasons) - {record_column})]
    missing = sorted(set(named_by).union(*(_read_columns(e, frame.columns) for e in expectations))
                     - set(frame.columns))
    if missing:
        raise ValueError(f"frame lacks columns: {', '.join(missing)}")

    failed = _failed_positions(frame, expectations, checked_before)
    positions = sorted(failed)
    invalid = []
    # Only the columns a problem's name and reasons read, of only the failing rows: a bad extract fails every row,
    # and a dict of every column per failing row would be the largest thing validation holds.
    for position, row in zip(positions, _blank_to_missing(frame[named_by].iloc[positions]).to_dict("records"),
                             strict=True):
        shown = {column: _shown(value) for column, value in row.items()}
        record = row[record_column]
        invalid.append(
            RecordProblem(
                record=str(shown[record_column]) if pd.notna(record) else unnamed.format_map(shown),
                reasons=tuple(dict.fromkeys(r.format_map(shown) for r in sorted(failed[position], key=reasons.index))),
                owner=owner,
            )
        )
    bad = np.zeros(len(frame), dtype=bool)
    bad[positions] = True
    return FrameValidation(
        valid=frame.iloc[np.flatnonzero(~bad)],
        invalid=tuple(invalid),
        checked=len(frame),
        rejected=frame.iloc[positions],
    )


def _read_columns(expectation: Expectation, columns: Iterable[str]) -> set[str]:
    """The columns an expectation reads: those it names and those its row condition names (every one of
    ``columns`` for a condition written as a query string, which GX parses itself)."""
    named = {c for a in _COLUMN_ARGUMENTS if (c := getattr(expectation, a, None))}
    condition = getattr(expectation, "row_condition", None)
    if isinstance(condition, str):
        return named | set(columns)
    return named | _condition_columns(condition)


def _condition_columns(condition: Any) -> set[str]:
    """The columns a GX row condition (``Column(...)`` comparisons joined by & and |) names."""
    if condition is None:
        return set()
    if hasattr(condition, "conditions"):
        return set().union(*map(_condition_columns, condition.conditions))
    return {condition.column.name}


def _template_fields(*templates: str) -> set[str]:
    """The column names a set of str.format templates refer to."""
    return {field for t in templates for _, field, _, _ in Formatter().parse(t) if field}


def _shown(value: Any) -> Any:
    """A value as it reads in a reason: a whole float as an integer ("100", not "100.0")."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _blank_to_missing(frame: pd.DataFrame, positions: np.ndarray | None = None) -> pd.DataFrame:
    """Copy with whitespace-only strings turned into nulls, indexed by ``positions`` (the rows' positions in the
    whole frame; 0..n-1 when not given).

    Sources export empty fields as "" or spaces; GX's not-null checks only see real
    nulls (and its unique check would call two blanks duplicates), so blanks are
    normalised here rather than duplicated as regexes per rule.
    """
    frame = frame.set_axis(pd.RangeIndex(len(frame)) if positions is None else pd.Index(positions))
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        blank = _blanks(frame[column])
        if blank.any():
            frame[column] = frame[column].mask(blank)
    return frame


def _blanks(values: pd.Series) -> np.ndarray:
    """Which values are whitespace-only strings: stripped column-wise where the column holds text alone (a regex
    per cell took most of a quiet night's validation), value by value where text is mixed with other values."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.str.strip().eq("").fillna(False).to_numpy(dtype=bool)
    return values.map(lambda value: isinstance(value, str) and not value.strip()).to_numpy(dtype=bool)


def _context() -> EphemeralDataContext:
    """A throw-away in-memory GX context that writes no files and draws no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _failed_positions(frame: pd.DataFrame, expectations: list[Expectation],
                      checked_before: np.ndarray | None = None) -> dict[int, list[str]]:
    """Run the rules over the frame (``_runs``: which rules over which rows); return row position -> reason
    templates.

    One GX context and batch definition, and one suite per kind of rule, serve every run. Each run is handed only
    the columns its rules read, of only its rows, blanks turned into nulls, indexed by position in the frame.

    GX's regex and length checks turn their column into text (``astype(str)``), which pandas 3 would store in
    pyarrow, whose memory pool keeps what it once held: some 20 MiB at 20,000 employees. Its Python storage keeps
    the strings GX is handed and gives the same answers (pandas runs a pattern through Python's ``re`` wherever
    pyarrow's RE2 would answer otherwise).
    """
    runs = _runs(frame, expectations, checked_before)
    if not runs:
        return {}
    import great_expectations as gx

    batches = (
        _context()
        .data_sources.add_pandas("moodle_sync")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )
    failed: dict[int, list[str]] = {}
    with pd.option_context("mode.string_storage", "python"):
        for number, (rules, row_sets) in enumerate(runs):
            suite = gx.ExpectationSuite(name=f"moodle_sync_{number}", expectations=rules)
            columns = sorted(set().union(*(_read_columns(e, frame.columns) for e in rules)))
            for rows in row_sets:
                part = _blank_to_missing(frame.iloc[rows][columns], rows)
                for position, reasons in _suite_failures(batches, part, suite).items():
                    failed.setdefault(position, []).extend(reasons)
    return failed


def _runs(frame: pd.DataFrame, expectations: list[Expectation],
          checked_before: np.ndarray | None) -> list[tuple[list[Expectation], list[np.ndarray]]]:
    """Which rules run over which rows (positions), with GX's verdict on every row as if all ran over the whole
    frame: the row-wise rules over the rows not ``checked_before``, ``CHUNK_ROWS`` at a time; a uniqueness rule
    over the rows whose value its column holds more than once (no other row can break it, and a frame without
    repeats needs no run); any other rule over every row. A run with no rows is left out."""
    every_row = np.arange(len(frame))
    to_check = every_row if checked_before is None else np.flatnonzero(~np.asarray(checked_before, dtype=bool))
    runs: list[tuple[list[Expectation], list[np.ndarray]]] = []
    row_wise = [e for e in expectations if e.expectation_type in _ROW_WISE]
    if row_wise and len(to_check):
        runs.append((row_wise, [to_check[start:start + CHUNK_ROWS] for start in range(0, len(to_check), CHUNK_ROWS)]))
    for expectation in expectations:
        if expectation.expectation_type == _UNIQUE:
            repeated = _repeated_positions(frame[expectation.configuration.kwargs["column"]])
            runs += [([expectation], [repeated])] if len(repeated) else []
    whole = [e for e in expectations if e.expectation_type not in _ROW_WISE | {_UNIQUE}]
    return runs + ([(whole, [every_row])] if whole else [])


def _repeated_positions(values: pd.Series) -> np.ndarray:
    """Positions of the values (blanks as missing, as GX sees them; missing ones skipped, as GX skips them) held by
    more than one row."""
    seen = _blank_to_missing(values.to_frame()).iloc[:, 0]
    return np.flatnonzero((seen.notna() & seen.duplicated(keep=False)).to_numpy(dtype=bool))


def _suite_failures(batches: BatchDefinition, frame: pd.DataFrame, suite: ExpectationSuite) -> dict[int, list[str]]:
    """Run one suite over one frame; return index label -> reason templates of the rules its row broke."""
    results = batches.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=_RESULT_FORMAT)
    failed: dict[int, list[str]] = {}
    for result in results.results:
        config = result.expectation_config
        assert config is not None, "GX gives every result of a suite's run its expectation"
        if "unexpected_index_list" not in result.result:
            # GX catches errors (e.g. text in a number column) into exception_info and
            # returns an empty result; never let that pass as "nobody broke the rule".
            raise RuntimeError(
                f"GX could not evaluate {config.type} on "
                f"{', '.join(str(config.kwargs[a]) for a in _COLUMN_ARGUMENTS if a in config.kwargs)}: "
                f"{_exception_message(result.exception_info)}"
            )
        for position in result.result["unexpected_index_list"]:
            failed.setdefault(int(position), []).append(config.meta["reason"])
    return failed


def _exception_message(info: dict) -> str:
    """GX nests exception_info per metric when a metric failed; take the first message."""
    if "exception_message" in info:
        return str(info["exception_message"])
    messages = [str(v.get("exception_message")) for v in info.values() if isinstance(v, dict)]
    return messages[0] if messages else "no error message"
