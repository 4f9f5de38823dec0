"""Every test that runs rules runs them on each rule backend (engines/rulehost: durable_rules and the reference)."""

from __future__ import annotations

import pytest

from dutyline.engines.rulehost import BACKENDS


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def backend_name(request: pytest.FixtureRequest) -> str:
    """The rule backend under test; a test about durable_rules itself pins it with
    `@pytest.mark.parametrize("backend_name", ["durable_rules"])`."""
    return str(request.param)
