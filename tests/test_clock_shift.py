"""The clock shift of `make test` is really applied: otherwise the date-independence run
would prove nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest


def test_unit_tests_run_on_the_shifted_clock(request: pytest.FixtureRequest) -> None:
    days = request.config.getoption("--clock-shift-days")
    import time_machine

    hatch = time_machine.escape_hatch
    real = datetime.fromtimestamp(hatch.time.time() if hatch.is_travelling() else time.time(),
                                  UTC)
    ahead = datetime.now(UTC) - real
    assert abs(ahead - timedelta(days=days)) < timedelta(hours=1)
    assert abs(time.time() - real.timestamp() - days * 86400) < 3600
