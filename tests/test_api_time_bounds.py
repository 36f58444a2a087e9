"""The analyst API's time bounds (``workbench.api.time_range`` over ``workbench.times``): out-of-range
input is a ValidationError naming the bound, never an OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workbench import api
from workbench.errors import ValidationError

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "99999999d", "9999999999h"]
)
def test_out_of_range_bounds_name_the_bound(value: str) -> None:
    with pytest.raises(ValidationError) as err:
        api.time_range(value, None, NOW)
    assert "out of range" in err.value.details["since"][0]
    with pytest.raises(ValidationError) as err:
        api.time_range(None, value, NOW)
    assert "out of range" in err.value.details["until"][0]


def test_in_range_edges_are_kept() -> None:
    start, end = api.time_range("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", NOW)
    assert start == datetime(1, 1, 1, tzinfo=UTC)
    assert end == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
