"""Plain Python records of a pandas frame, for the steps that walk every employee row by row, and fingerprints of
its rows, for the steps that skip the rows seen before."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """``frame.to_dict("records")``, the same values, without pandas boxing each cell one by one (what a step that
    reads every employee spent most of its time on: 0.15 s of 0.2 s for 20,000 employees' six columns)."""
    columns = list(frame.columns)
    return [dict(zip(columns, row, strict=True)) for row in zip(*(frame[c].tolist() for c in columns), strict=True)]


def row_fingerprints(frame: pd.DataFrame, salt: str) -> list[str]:
    """A short hash of each row's values (compared as text), keyed by ``salt``: whatever else decides what a row
    becomes (settings), so that a change of it changes every row's hash. A row whose hash is the one stored with
    it is the row seen then."""
    import pandas as pd

    key = hashlib.sha256(salt.encode()).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False, hash_key=key, categorize=False)
    return [f"{value:016x}" for value in hashed.tolist()]
