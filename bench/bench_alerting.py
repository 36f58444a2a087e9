"""Measure alert evaluation: 1,000 rules over the 10M-event demo lake.

Run from the repository root:

    .venv/bin/python bench/bench_alerting.py [--rules 1000] [--runs 5] [--kinds mixed] [--write-docs]

Reuses the demo lake of ``bench/bench_query.py`` (``bench/out/lake-10000000-30d-50s``,
10M events over 30 days, 50 services, ending 2026-11-26T12:00Z); when it is missing,
builds a 1M-event lake instead and says so. Measures:

* compute: the single ``kind_counts`` pass for all rules plus ``judge``/``decide`` per rule
  (``--kinds mixed``: the six rule kinds in turn; the first pass of a process also
  builds the per-day baselines, reported apart as "cold");
* ``evaluate()``: compute plus the catalog reads and writes (SQLite), first tick
  (creates incidents + outbox rows) and a following tick (updates);
* the papermill run of ``scheduled/evaluate_alerts.ipynb`` (kernel start included).

``--write-docs`` replaces the ``## Alerting`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.alerting.decide import decide  # noqa: E402
from workbench.alerting.evaluate import breach_of, evaluate, kind_spec, rule_state  # noqa: E402
from workbench.alerting.run import run_notebook  # noqa: E402
from workbench.catalog import models as m  # noqa: E402
from workbench.catalog.db import get_engine, init_db, session_scope  # noqa: E402
from workbench.config import Settings  # noqa: E402
from workbench.demo import generate, service_names  # noqa: E402
from workbench.query.kinds import kind_counts  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OUT = ROOT / "bench" / "out"
BIG = OUT / "lake-10000000-30d-50s"


def lake_for_bench() -> tuple[str, str]:
    """Return (lake URL, description): the 10M lake when built, else a 1M one built here."""
    if (BIG / "_BUILT").exists():
        return str(BIG), "10M events, 30 days, 50 services (bench_query.py's demo lake)"
    small = OUT / "lake-1000000-30d-50s"
    if not (small / "_BUILT").exists():
        generate(str(small), events=1_000_000, days=30, services=50, now=NOW, seed=42)
        (small / "_BUILT").write_text("ok\n")
    return str(small), "1M events, 30 days, 50 services (10M lake missing: SMALLER THAN THE TARGET)"


KINDS = ("threshold", "ratio", "absence", "match", "new_pattern", "anomaly")


def _kind_fields(kind: str, i: int) -> dict[str, object]:
    """Return the kind-specific fields of the ``i``-th rule of ``kind``."""
    if kind == "ratio":
        return {"kind": kind, "threshold": (5, 10, 25)[i % 3], "min_events": 20}
    if kind == "absence":
        return {"kind": kind, "threshold": 1, "levels": ["debug", "info", "warn", "error", "fatal"]}
    if kind == "match":
        return {"kind": kind, "match": ("Timeout", "connection refused")[i % 2]}
    if kind == "new_pattern":
        return {"kind": kind, "threshold": (1, 5)[i % 2], "baseline_days": 7}
    if kind == "anomaly":
        return {"kind": kind, "threshold": (1, 5)[i % 2], "baseline_days": 7, "sensitivity": 3.0}
    return {}


def make_rules(count: int, services: list[str], kinds: str = "threshold") -> list[m.AlertRule]:
    """Return ``count`` varied rules: windows 1-60 min, thresholds 1-500, some filters/levels.

    ``kinds="mixed"``: the six kinds in turn (threshold rules keep today's variety).
    """
    rules = []
    windows = (1, 5, 10, 15, 30, 60)
    for i in range(count):
        kind = KINDS[i % len(KINDS)] if kinds == "mixed" else "threshold"
        rule = m.AlertRule(
            name=f"rule-{i:04d}",
            service=services[i % len(services)],
            threshold=(1, 5, 20, 50, 200, 500)[i % 6],
            window_minutes=windows[(i // len(services)) % len(windows)],
            cooldown_minutes=15,
            levels=["error"] if i % 7 == 0 else ["error", "fatal"],
            message_contains="timeout" if i % 11 == 0 else None,
            auto_resolve_minutes=60 if i % 3 == 0 else None,
            created_at=NOW - timedelta(days=1),
        )
        if kind != "threshold":
            rule.message_contains = None
            for name, value in _kind_fields(kind, i).items():
                setattr(rule, name, value)
        rules.append(rule)
    return rules


def main() -> None:
    """Run the measurements and print a Markdown section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--kinds", choices=("threshold", "mixed"), default="threshold")
    args = ap.parse_args()
    lake, lake_desc = lake_for_bench()
    rules = make_rules(args.rules, service_names(50), args.kinds)
    states = [rule_state(r) for r in rules]
    specs = [kind_spec(s) for s in states]

    # Compute: one kind_counts pass + judge/decide per rule. The first pass builds the
    # per-day baselines (once per process and day): measured apart as "cold".
    t = time.perf_counter()
    kind_counts(lake, specs, NOW)
    cold_ms = (time.perf_counter() - t) * 1000
    count_ms, decide_ms = [], []
    breaching = 0
    for _ in range(args.runs):
        t = time.perf_counter()
        counts = kind_counts(lake, specs, NOW)
        t1 = time.perf_counter()
        decisions = []
        for s in states:
            b = breach_of(s, counts[s.rule_id])
            decisions.append(decide(s, b.count, None, False, NOW, breach=b))
        t2 = time.perf_counter()
        count_ms.append((t1 - t) * 1000)
        decide_ms.append((t2 - t1) * 1000)
        breaching = sum(d.action == "create" for d in decisions)
    compute_ms = [a + b for a, b in zip(count_ms, decide_ms, strict=True)]

    with tempfile.TemporaryDirectory(prefix="bench-alerting-") as tmp:
        settings = Settings(  # type: ignore[call-arg]
            WORKBENCH_DATA_DIR=Path(tmp),
            WORKBENCH_LAKE_URL=lake,
            WORKBENCH_EVALUATE_TIMEOUT_SECONDS=120,
        )
        engine = get_engine(settings.database_url)
        init_db(engine)
        with session_scope(engine) as s:
            s.add_all(make_rules(args.rules, service_names(50), args.kinds))
            # A closed loopback port: sends fail fast and are rescheduled (measures the outbox path).
            s.add(m.NotificationChannel(target="http://127.0.0.1:9/hook", name="bench"))
        t = time.perf_counter()
        first = evaluate(engine=engine, lake_url=lake, now=NOW, dashboard_url="http://d")
        first_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        evaluate(
            engine=engine, lake_url=lake, now=NOW + timedelta(minutes=1), dashboard_url="http://d"
        )
        second_ms = (time.perf_counter() - t) * 1000
        import papermill  # noqa: F401  (the scheduler imports it once, not per tick)

        # The first notebook run of a data directory builds the per-day baselines on
        # disk (once a day); the following ones are the steady state.
        t = time.perf_counter()
        run_notebook(settings=settings, now=NOW + timedelta(minutes=2))
        first_wall = time.perf_counter() - t
        walls = []
        for k in range(3):
            t = time.perf_counter()
            run_notebook(settings=settings, now=NOW + timedelta(minutes=3 + k))
            walls.append(time.perf_counter() - t)
        engine.dispose()

    heading = "## Alerting" + (": mixed rule kinds" if args.kinds == "mixed" else "")
    section = "\n".join(
        [
            heading,
            "",
            f"Command: `.venv/bin/python bench/bench_alerting.py --rules {args.rules} --runs {args.runs}"
            f"{' --kinds mixed' if args.kinds == 'mixed' else ''}"
            f"{' --write-docs' if args.write_docs else ''}`",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other work while "
            f"measured: load average {os.getloadavg()[0]:.1f}), Python {platform.python_version()}; lake: {lake_desc}; "
            f"{args.rules} rules ({'the six kinds in turn' if args.kinds == 'mixed' else 'threshold'}) "
            f"over 50 services, windows 1-60 min, {breaching} breaching at "
            f"{NOW.isoformat()}; SQLite catalog; one webhook channel.",
            "",
            "| measure | median | min | target |",
            "|---|---|---|---|",
            f"| compute: `kind_counts` (one pass, {args.rules} rules) | "
            f"{statistics.median(count_ms):.0f} ms | {min(count_ms):.0f} ms | |",
            f"| first pass of a process (builds the per-day baselines) | {cold_ms:.0f} ms | | |",
            f"| compute: `judge` + `decide` x {args.rules} | {statistics.median(decide_ms):.1f} ms | "
            f"{min(decide_ms):.1f} ms | |",
            f"| compute total | {statistics.median(compute_ms):.0f} ms | {min(compute_ms):.0f} ms "
            f"| <= 1 s |",
            f"| `evaluate()` first tick ({first.counts().get('created', 0)} incidents created, "
            f"outbox rows, {args.rules} decision rows) | {first_ms:.0f} ms | | |",
            f"| `evaluate()` next tick (updates) | {second_ms:.0f} ms | | |",
            f"| papermill run of `evaluate_alerts.ipynb` (a steady-state tick), wall incl. "
            f"kernel start and imports in the kernel (3 runs) | {statistics.median(walls):.2f} s | "
            f"{min(walls):.2f} s | <= 5 s |",
            f"| papermill run, the first of a data directory (builds the day baselines on disk) "
            f"| {first_wall:.2f} s | | |",
            "",
        ]
    )
    print(section)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", section, heading)


def write_section(path: Path, section: str, heading: str = "## Alerting") -> None:
    """Replace (or append) the ``heading`` section of ``path``, leaving others as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
