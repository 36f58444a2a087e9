"""The widgets the pages share: the error box, timed refresh, the enable toggle."""

from __future__ import annotations

import asyncio

from workbench.dashboard.widgets import AutoRefresher, EnableToggle, ErrorBox


def test_error_box_shows_and_hides_escaped_text() -> None:
    box = ErrorBox()
    box.show("<b>boom</b>")
    assert "&lt;b&gt;boom" in box.widget.value and box.widget.layout.display is None
    box.clear()
    assert box.widget.layout.display == "none" and box.message == ""


def test_auto_refresher_does_not_start_without_a_running_loop() -> None:
    r = AutoRefresher(lambda: None, 1)
    assert r.start() is False
    assert AutoRefresher(lambda: None, 0).start() is False


def test_auto_refresher_ticks_on_the_running_loop() -> None:
    calls: list[int] = []

    async def main() -> None:
        r = AutoRefresher(lambda: calls.append(1), 0.01)
        assert r.start() is True
        await asyncio.sleep(0.08)
        r.stop()

    asyncio.run(main())
    assert len(calls) >= 2


def test_enable_toggle_persists_clicks_and_reverts_a_failed_one() -> None:
    """A click is persisted; a failing one goes back to the old state and is reported; show() persists nothing."""
    stored: list[bool] = []
    failures: list[BaseException] = []

    def persist(enabled: bool) -> None:
        if len(stored) == 1:
            raise RuntimeError("catalog down")
        stored.append(enabled)

    toggle = EnableToggle(True, "wb-x-toggle", persist=persist, failed=failures.append)
    assert toggle.button.description == "Enabled" and "wb-x-toggle" in toggle.button._dom_classes
    toggle.button.value = False
    assert stored == [False] and failures == []
    toggle.show(False)
    assert toggle.button.description == "Disabled"
    toggle.button.value = True  # persist fails now
    assert toggle.button.value is False and toggle.button.description == "Disabled"
    assert [str(e) for e in failures] == ["catalog down"]
    toggle.show(True)  # a refresh: drawn, not persisted
    assert stored == [False] and toggle.button.value is True
