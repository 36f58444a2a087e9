"""``workbench mirror backfill|check`` range options parse through workbench.times."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from workbench.cli import main


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--from", "2026-13-01", "--to", "2026-12-02"], "--from: not an ISO 8601 date"),
        (["--from", "2026-12-01", "--to", "soon"], "--to: not an ISO 8601 timestamp: 'soon'"),
        (["--from", "2026-12-02", "--to", "2026-12-01T00:00:00Z"], "--to must be after --from"),
    ],
)
def test_bad_ranges_name_the_option(args: list[str], words: str) -> None:
    result = CliRunner().invoke(main, ["mirror", "backfill", *args])
    assert result.exit_code == 2
    assert words in result.output


def test_a_to_date_includes_that_whole_day() -> None:
    from workbench.cli.mirror import _range

    lo, hi = _range("2026-12-01", "2026-12-01")
    assert (hi - lo).days == 1
