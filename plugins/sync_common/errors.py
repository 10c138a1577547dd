"""Failures that retrying cannot mend, whatever the flow: the task fails at once, without retries."""

from __future__ import annotations


class PermanentStepError(RuntimeError):
    """A step refused to go on (a tripped guard, a disabled integration, bad settings); its message says
    what to fix and who must fix it."""
