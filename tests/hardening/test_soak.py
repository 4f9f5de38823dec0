"""The soak command's load, for a few seconds against the shared server, so that the harness itself keeps working
(the long run is `python -m tests.hardening.soak --minutes 5`; its latest results are in docs/hardening.md)."""

from __future__ import annotations

from tests.hardening.conftest import Stack
from tests.hardening.soak import run_load


def test_a_short_mixed_load_has_no_errors_no_changed_answers_and_no_lost_edits(stack: Stack) -> None:
    result = run_load(
        stack.server.url,
        stack.token,
        stack.server.process.pid,
        seconds=6,
        deciders=2,
        editors=2,
        queriers=1,
        sample_every=2,
    )
    tally = result["tally"]
    assert not tally.errors, tally.errors[:5]
    assert tally.requests["decide /v1/check"] > 100 and tally.edits > 0
    assert "unhandled error" not in stack.server.log_text()
