"""Channel templates: Jinja2 in a sandbox, checked at save, rendered with bounded output.

A channel's optional ``template`` renders the notification text (Slack ``text``,
the email's text part and, by its first line, the email subject; the webhook JSON
gains a ``text`` key). The context is the notification payload
(:mod:`workbench.alerting.payload`): ``type``, ``service``, ``errorCount``,
``threshold``, ``url``, ``reason``, ``evidence`` ... as top-level names, and the
whole object as ``payload``.

Safety: templates are written by whoever may edit channels and rendered inside the
scheduler, so they run in :class:`jinja2.sandbox.SandboxedEnvironment` (no attribute
access to internals, no ``__class__`` walks), undefined names render empty, and
the output is cut at :data:`MAX_OUTPUT_CHARS`. The HTML environment autoescapes.
A template that fails at render time falls back to the default text with a note,
so a bad template never loses a page.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from workbench.errors import ValidationError

FIELD = "template"
MAX_TEMPLATE_CHARS = 8000
MAX_OUTPUT_CHARS = 4000


@lru_cache(maxsize=2)
def environment(html: bool = False) -> SandboxedEnvironment:
    """Return the sandboxed environment (autoescaping when ``html``)."""
    return SandboxedEnvironment(
        autoescape=html,
        undefined=jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def check_template(source: str) -> None:
    """Return if ``source`` compiles; ValidationError naming ``template`` and the line if not."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValidationError(
            "Invalid channel", {FIELD: [f"at most {MAX_TEMPLATE_CHARS} characters"]}
        )
    try:
        environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValidationError(
            "Invalid channel", {FIELD: [f"line {exc.lineno}: {exc.message}"]}
        ) from None


def render(source: str, payload: dict[str, Any], *, html: bool = False) -> str:
    """Return ``source`` rendered over ``payload``, at most :data:`MAX_OUTPUT_CHARS` long.

    Raises :class:`jinja2.TemplateError` (syntax, sandbox violation, runtime error);
    callers that must not fail use :func:`render_or_none`.
    """
    template = environment(html).from_string(source)
    text = template.render({**payload, "payload": payload})
    return bound(text)


def render_or_none(source: str | None, payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return ``(text, error)``: the rendered text, or None and why the template failed."""
    if not source:
        return None, None
    try:
        return render(source, payload), None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


def bound(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
