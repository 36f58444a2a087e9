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
output passes :data:`MAX_OUTPUT_CHARS` (then it is cut there). The sandbox is the
immutable one: ``payload.evidence.clear()`` cannot change what the channel sends.
Sizes given to calls and filters (``'x'.ljust(n)``, ``|center(n)``), printf and
``format`` widths, strings joined with ``+``/``~``/``join`` or grown by ``replace``,
integers built with ``*``/``**`` and the printed size of any value (:data:`MAX_PRINTED`)
are bounded too, and ``lipsum`` is gone. The HTML environment autoescapes.
A template that fails at render time falls back to the default text with a note,
so a bad template never loses a page.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.runtime import markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from workbench.errors import ValidationError

FIELD = "template"
MAX_TEMPLATE_CHARS = 8000
MAX_OUTPUT_CHARS = 4000


#: Largest string/list a template may build with ``*`` and largest ``**`` exponent.
MAX_PRODUCT = 100_000
MAX_EXPONENT = 100
#: Largest integer (in bits) a template may build with ``*`` or ``**`` (about 30 000 digits).
MAX_INT_BITS = 100_000
#: Most characters a value may print as (shared references can make a small list print 2**40 items).
MAX_PRINTED = 1_000_000
#: Loop steps one render may take, all ``for`` loops together (about 0.1 s of Jinja2).
MAX_LOOP_STEPS = 200_000
_LOOP_GUARD = "__workbench_loop_steps"
_CONCAT_GUARD = "__workbench_concat"
#: A printf conversion's flags, width and precision (``%300000000d``), or a ``{...}`` field.
_PRINTF_SPEC = re.compile(r"%[^a-zA-Z%]*")
_FORMAT_FIELD = re.compile(r"\{[^{}]*\}")
_BIG_NUMBER = re.compile(r"\d{6,}")
#: The ``str`` methods whose number arguments are the size of what they build.
_SIZED = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
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


def _check_sizes(args: Any) -> None:
    """Raise SecurityError if ``args`` (a value, tuple, list or dict) holds a number above MAX_PRODUCT."""
    values = args.values() if isinstance(args, dict) else args
    values = values if isinstance(values, tuple | list) else [values]
    for value in values:
        if isinstance(value, int | float) and abs(value) > MAX_PRODUCT:
            raise SecurityError(f"a size above {MAX_PRODUCT} given to a call or filter")


def _check_spec(text: str, pattern: re.Pattern[str]) -> None:
    """Raise SecurityError if a printf/format field of ``text`` asks a width above 99 999."""
    if any(_BIG_NUMBER.search(spec) for spec in pattern.findall(text)):
        raise SecurityError("a format width or precision above 99999")


def _check_printf(text: str, args: Any) -> None:
    specs = _PRINTF_SPEC.findall(text)
    _check_spec(text, _PRINTF_SPEC)
    if any("*" in spec for spec in specs):  # ``%*d``: the width is one of the arguments
        _check_sizes(args)


def _printed_size(value: Any, cap: int = MAX_PRINTED) -> int:
    """Return about how many characters ``str(value)`` takes, counting up to just past ``cap``.

    Every nested item is counted as often as it prints (shared references too), so the
    walk stops early on a structure whose text would be huge.
    """
    size, stack = 0, [value]
    while stack and size <= cap:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + 2 * len(item)
            stack.extend(item)
        else:
            size += 8
    return size


def _check_printed(*values: Any) -> None:
    """Raise SecurityError if ``values`` would print as more than MAX_PRINTED characters."""
    if sum(_printed_size(v) for v in values) > MAX_PRINTED:
        raise SecurityError(f"a value printing as more than {MAX_PRINTED} characters")


def _finalize(value: Any) -> Any:
    """Check every ``{{ ... }}`` value before Jinja2 turns it into text."""
    if isinstance(value, list | tuple | dict | set | frozenset):
        _check_printed(value)
    return value


def _check_built(size: int) -> None:
    if size > MAX_PRODUCT:
        raise SecurityError(f"a string longer than {MAX_PRODUCT}")


def _replaced_size(text: Any, old: Any, new: Any) -> int:
    """Return how long ``text.replace(old, new)`` can get (0 when they are not strings)."""
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    hits = text.count(old) if old else len(text) + 1
    return len(text) + hits * len(new)


def _joined_size(sep: Any, items: list[Any]) -> int:
    """Return about how long ``sep.join(items)`` gets (strings counted, others as short)."""
    sep_len = len(sep) if isinstance(sep, str) else 0
    return sum(len(i) if isinstance(i, str) else 0 for i in items) + sep_len * len(items)


def _bounded_str_call(obj: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Check ``str.replace/join/expandtabs`` calls; return the args (join's iterable as a list)."""
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return args
    if name == "replace" and len(args) >= 2:
        _check_built(_replaced_size(owner, args[0], args[1]))
    elif name == "join" and len(args) == 1:
        items = list(_counted(args[0]))
        _check_built(_joined_size(owner, items))
        return (items,)
    elif name == "expandtabs" and args and isinstance(args[0], int):
        _check_built(len(owner) + owner.count("\t") * args[0])
    return args


def _bounded_join(join: Any) -> Any:
    """Return the ``join`` filter, refusing a result longer than MAX_PRODUCT."""

    @functools.wraps(join)
    def bounded(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(_counted(value))
        _check_printed(*items)
        if attribute is None:
            _check_built(_joined_size(d, items))
        result = join(eval_ctx, items, d, attribute)
        _check_built(len(result))
        return result

    return bounded


def _bounded_filter(name: str, filter_: Any, check: Any) -> Any:
    """Return ``filter_`` with ``check(value, args, kwargs)`` run first (SecurityError if too big)."""

    @functools.wraps(filter_)  # keeps Jinja2's pass_environment mark
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        check(value, args, kwargs)
        return filter_(value, *args, **kwargs)

    return bounded


def _concat(*items: Any) -> Any:
    """Return ``a ~ b ~ ...`` as Jinja2 would; SecurityError when longer than MAX_PRODUCT."""
    _check_printed(*items)
    out = markup_join(items)
    if len(out) > MAX_PRODUCT:
        raise SecurityError(f"a joined string longer than {MAX_PRODUCT}")
    return out


class _GuardConcat(NodeTransformer):
    """Route every ``~`` through :func:`_concat` (Jinja2 joins them outside the sandbox's hooks)."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.Name(_CONCAT_GUARD, "load"), list(node.nodes), [], None, None)


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on what one expression may build.

    ``{{ 'x' * 10**10 }}`` or ``{{ 'x'|center(10**9) }}`` would exhaust memory, repeated
    ``**`` or squaring an integer in a loop would keep the tick busy for minutes.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call ``__obj`` unless a size argument is too big (``'x'.ljust(10**9)``)."""
        if isinstance(getattr(__obj, "__self__", None), str) and __obj.__name__ in _SIZED:
            _check_sizes(args)
            _check_sizes(kwargs)
        _check_printed(*args, *kwargs.values())
        args = _bounded_str_call(__obj, args)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        """Return the sandbox's ``str.format``, refused when a field asks a huge width."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_spec(value.__self__, _FORMAT_FIELD)
        return wrapped

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Return ``left <operator> right``; SecurityError when the result would be too big."""
        if operator == "+":
            sequences = isinstance(left, str | list | tuple) and isinstance(
                right, str | list | tuple
            )
            if sequences and len(left) + len(right) > MAX_PRODUCT:
                raise SecurityError(f"a joined sequence longer than {MAX_PRODUCT}")
            if isinstance(left, list | tuple) and isinstance(right, list | tuple):
                _check_printed(left, right)
            return left + right
        if operator == "%":
            if isinstance(left, str):
                _check_printf(left, right)
                _check_printed(right)
            return left % right
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent above {MAX_EXPONENT}")
            if isinstance(right, int) and _int_bits(left) * right > MAX_INT_BITS:
                raise SecurityError(f"an integer above {MAX_INT_BITS} bits")
            return left**right
        if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
            raise SecurityError(f"an integer above {MAX_INT_BITS} bits")
        for seq, n in ((left, right), (right, left)):
            if (
                isinstance(seq, str | list | tuple)
                and isinstance(n, int)
                and len(seq) * n > MAX_PRODUCT
            ):
                raise SecurityError(f"a repeated sequence longer than {MAX_PRODUCT}")
            repeated = isinstance(seq, list | tuple) and isinstance(n, int) and n > 0
            if repeated and _printed_size(seq, MAX_PRINTED // n + 1) * n > MAX_PRINTED:
                raise SecurityError(f"a value printing as more than {MAX_PRINTED} characters")
        return left * right

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every ``for`` loop's iterable through the step budget."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_LOOP_GUARD, "load"), [loop.iter], [], None, None)
        guarded: nodes.Template = _GuardConcat().visit(tree)
        return guarded


@lru_cache(maxsize=2)
def environment(html: bool = False) -> SandboxedEnvironment:
    """Return the sandboxed environment (autoescaping when ``html``)."""
    env = BoundedSandbox(
        autoescape=html,
        finalize=_finalize,
        undefined=jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals[_LOOP_GUARD] = _counted
    env.globals[_CONCAT_GUARD] = _concat
    env.globals.pop("lipsum", None)  # lipsum(10**6) builds megabytes of text at once
    for name in ("center", "indent", "wordwrap", "truncate"):
        env.filters[name] = _bounded_filter(
            name,
            env.filters[name],
            lambda value, args, kwargs: _check_sizes([*args, *kwargs.values()]),
        )
    env.filters["replace"] = _bounded_filter(
        "replace",
        env.filters["replace"],
        lambda eval_ctx, args, kwargs: (
            _check_built(_replaced_size(*args[:3])) if len(args) >= 3 else None
        ),
    )
    env.filters["join"] = _bounded_join(env.filters["join"])
    for name in ("string", "tojson", "pprint", "list", "unique", "sort"):
        env.filters[name] = _bounded_filter(
            name, env.filters[name], lambda value, args, kwargs: _check_printed(value, *args)
        )
    env.filters["format"] = _bounded_filter(
        "format",
        env.filters["format"],
        lambda value, args, kwargs: _check_printf(str(value), [*args, *kwargs.values()]),
    )
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
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]


def bound(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
