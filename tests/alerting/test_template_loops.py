"""A channel template cannot keep the scheduler busy: loops have a step budget per render.

An outsider who may edit channels tries next what the size bounds do not catch: nested
loops that print nothing (``range`` alone allows 100,000 items, so two nested loops are
10^10 steps). Rendering happens inside the tick, so it must stop quickly and fall back to
the default text, never hang the scheduler.
"""

from __future__ import annotations

import time

import pytest

from workbench.catalog import templates

PAYLOAD = {"service": "api", "errorCount": 7, "type": "error_alert"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "source",
    [
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}done",
        "{% set xs = range(1000) | list %}{% for a in xs %}{% for b in xs %}{% for c in xs %}"
        "{% endfor %}{% endfor %}{% endfor %}done",
        "{% for a in range(100000) %}{% for b in 'x' * 99999 %}{% endfor %}{% endfor %}",
    ],
)
def test_nested_silent_loops_stop_at_the_step_budget(source: str) -> None:
    started = time.monotonic()
    text, error = templates.render_or_none(source, PAYLOAD)
    assert text is None
    assert error is not None and "loop" in error and str(templates.MAX_LOOP_STEPS) in error
    assert time.monotonic() - started < 10  # a generous bound: the budget stops it in ~0.1 s


def test_loops_within_the_budget_render() -> None:
    source = "{% for a in range(3) %}{% for b in range(2) %}{{ a }}{{ b }} {% endfor %}{% endfor %}"
    assert templates.render(source, PAYLOAD) == "00 01 10 11 20 21 "


def test_the_budget_is_per_render() -> None:
    half = templates.MAX_LOOP_STEPS // 2 - 1  # two loops just under the budget together
    source = "{% for a in range(N) %}{% endfor %}{% for a in range(N) %}{% endfor %}ok"
    source = source.replace("N", str(half))
    for _ in range(3):
        assert templates.render(source, PAYLOAD) == "ok"


def test_loop_variable_and_length_still_work() -> None:
    source = "{% for e in items %}{{ loop.index }}/{{ loop.length }} {% endfor %}"
    assert templates.render(source, {**PAYLOAD, "items": ["a", "b"]}) == "1/2 2/2 "
