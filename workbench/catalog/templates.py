"""Channel templates: Jinja2 in a sandbox, checked at save, rendered with bounded output.

A channel's optional ``template`` renders the notification text (Slack ``text``,
the email's text part and, by its first line, the email subject; the webhook JSON
gains a ``text`` key). The context is the notification payload
(:mod:`workbench.catalog.payload`): ``type``, ``service``, ``errorCount``,
``threshold``, ``url``, ``reason``, ``evidence`` ... as top-level names, and the
whole object as ``payload``.

Safety: templates are written by whoever may edit channels and rendered inside the
scheduler, so they run in :class:`jinja2.sandbox.SandboxedEnvironment` (no attribute
access to internals, no ``__class__`` walks; ``range`` at most 100 000 items; ``*``
building at most :data:`MAX_PRODUCT` items and ``**`` exponents at most
:data:`MAX_EXPONENT`; every ``for`` loop of one render shares a budget of
:data:`MAX_LOOP_STEPS` steps, so nested loops that print nothing cannot keep the tick
busy), undefined names render empty, and rendering stops once the
output passes :data:`MAX_OUTPUT_CHARS` (then it is cut there). The HTML environment autoescapes.
A template that fails at render time falls back to the default text with a note,
so a bad template never loses a page.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from workbench.errors import ValidationError

FIELD = "template"
MAX_TEMPLATE_CHARS = 8000
MAX_OUTPUT_CHARS = 4000


#: Largest string/list a template may build with ``*`` and largest ``**`` exponent.
MAX_PRODUCT = 100_000
MAX_EXPONENT = 100
#: Loop steps one render may take, all ``for`` loops together (about 0.1 s of Jinja2).
MAX_LOOP_STEPS = 200_000
_LOOP_GUARD = "__workbench_loop_steps"
#: The steps left in the current render (a one-element list, decremented in place).
_steps_left: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "template_steps_left", default=None
)


def _counted(iterable: Any) -> Iterator[Any]:
    """Yield ``iterable``'s items, charging each to the render's loop budget."""
    left = _steps_left.get()
    if left is None:  # rendered outside render(): a budget of its own
        left = [MAX_LOOP_STEPS]
    for item in iterable:
        left[0] -= 1
        if left[0] < 0:
            raise SecurityError(f"template loops ran over {MAX_LOOP_STEPS} steps")
        yield item


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus bounds on ``*`` and ``**`` (``{{ 'x' * 10**10 }}`` would exhaust memory)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Return ``left <operator> right``; SecurityError when the result would be too big."""
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent above {MAX_EXPONENT}")
            return left**right
        for seq, n in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(n, int)
                and len(seq) * n > MAX_PRODUCT
            ):
                raise SecurityError(f"a repeated sequence longer than {MAX_PRODUCT}")
        return left * right

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every ``for`` loop's iterable through the step budget."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_LOOP_GUARD, "load"), [loop.iter], [], None, None)
        return tree


@lru_cache(maxsize=2)
def environment(html: bool = False) -> SandboxedEnvironment:
    """Return the sandboxed environment (autoescaping when ``html``)."""
    env = BoundedSandbox(
        autoescape=html,
        undefined=jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals[_LOOP_GUARD] = _counted
    return env


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
    # Streamed: rendering stops once the output passes the bound (a long loop stops early).
    out: list[str] = []
    size = 0
    token = _steps_left.set([MAX_LOOP_STEPS])
    try:
        for chunk in template.generate({**payload, "payload": payload}):
            out.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                break
    finally:
        _steps_left.reset(token)
    return bound("".join(out))


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
