"""Interval reports from interaction records: service level, ASA, abandonment, AHT.

Definitions (each contact counts in the interval of its arrival; intervals are
aligned on multiples of their length since the epoch, so in UTC):

- offered: contacts that arrived (every recorded interaction);
- answered / abandoned: by outcome; ``other`` is overflowed, timed out or rejected;
- service level, named by its denominator: answered within the threshold
  (wait <= T) / offered, and / answered;
- ASA: mean wait of answered contacts (seconds);
- abandonment rate: abandoned / offered;
- AHT: mean of talk + wrap-up over answered contacts (seconds).

Per queue, a contact counts for the queue it was recorded in; per agent, for the
agent it ended with (the agent who answered it, or who was ringing when the
caller hung up). Rows of scope ``all`` add up every queue.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from typing import Literal, TextIO

import msgspec

__all__ = ["Report", "ReportRow", "format_table", "write_csv"]

Scope = Literal["all", "queue", "agent"]


class ReportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One interval of one queue, one agent, or all queues. Ratios are None when
    their denominator is zero; times are seconds."""

    interval_start_us: int
    scope: Scope
    name: str | None
    offered: int
    answered: int
    abandoned: int
    other: int
    answered_within_threshold: int
    service_level_offered: float | None
    service_level_answered: float | None
    asa_s: float | None
    abandonment_rate: float | None
    aht_s: float | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """A report over ``[start_us, end_us)`` in intervals of ``interval_s`` with the
    service-level threshold ``threshold_s``; rows by interval, then scope, then name."""

    interval_s: int
    threshold_s: float
    start_us: int | None
    end_us: int | None
    rows: tuple[ReportRow, ...]


# Per (interval, name): offered, answered, abandoned, answered within T,
# sum of answered waits (us), sum of answered handle times (us).
Sums = tuple[int, int, int, int, int, int]


def make_row(start_us: int, scope: Scope, name: str | None, s: Sums) -> ReportRow:
    offered, answered, abandoned, within, wait_sum, handle_sum = s

    def ratio(num: float, den: int) -> float | None:
        return num / den if den else None

    asa = ratio(wait_sum, answered)
    aht = ratio(handle_sum, answered)
    return ReportRow(
        interval_start_us=start_us,
        scope=scope,
        name=name,
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        other=offered - answered - abandoned,
        answered_within_threshold=within,
        service_level_offered=ratio(within, offered),
        service_level_answered=ratio(within, answered),
        asa_s=asa / 1e6 if asa is not None else None,
        abandonment_rate=ratio(abandoned, offered),
        aht_s=aht / 1e6 if aht is not None else None,
    )


def build_rows(
    by_queue: Iterable[tuple[int, str | None, Sums]],
    by_agent: Iterable[tuple[int, str | None, Sums]] | None,
) -> tuple[ReportRow, ...]:
    """Rows from per-(interval, queue) and per-(interval, agent) sums, with an
    ``all`` row per interval (the sum of its queues)."""
    rows: list[ReportRow] = []
    totals: dict[int, list[int]] = {}
    for start, name, s in by_queue:
        acc = totals.setdefault(start, [0] * 6)
        for k, v in enumerate(s):
            acc[k] += v
        rows.append(make_row(start, "queue", name, s))
    for start, acc in totals.items():
        rows.append(make_row(start, "all", None, (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5])))
    for start, name, s in by_agent or ():
        rows.append(make_row(start, "agent", name, s))
    order = {"all": 0, "queue": 1, "agent": 2}
    rows.sort(key=lambda r: (r.interval_start_us, order[r.scope], r.name or ""))
    return tuple(rows)


def iso(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 UTC, to the second."""
    t = dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


COLUMNS = (
    "interval_start",
    "scope",
    "name",
    "offered",
    "answered",
    "abandoned",
    "other",
    "answered_within_threshold",
    "service_level_offered",
    "service_level_answered",
    "asa_s",
    "abandonment_rate",
    "aht_s",
)


def _cells(r: ReportRow) -> list[str]:
    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    return [
        iso(r.interval_start_us),
        r.scope,
        r.name or "",
        str(r.offered),
        str(r.answered),
        str(r.abandoned),
        str(r.other),
        str(r.answered_within_threshold),
        num(r.service_level_offered),
        num(r.service_level_answered),
        num(r.asa_s),
        num(r.abandonment_rate),
        num(r.aht_s),
    ]


def write_csv(report: Report, out: TextIO) -> None:
    """One header row (:data:`COLUMNS`) and one row per report row; empty cells for
    undefined ratios; interval starts in ISO 8601 UTC."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in report.rows:
        w.writerow(_cells(r))


def format_table(report: Report) -> str:
    """The report as an aligned text table for a terminal."""

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def sec(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    head = (
        "interval (UTC)",
        "scope",
        "name",
        "offered",
        "answered",
        "abandoned",
        f"SL {report.threshold_s:g}s/off",
        f"SL {report.threshold_s:g}s/ans",
        "ASA s",
        "aband.",
        "AHT s",
    )
    body = [
        (
            iso(r.interval_start_us)[:16].replace("T", " "),
            r.scope,
            r.name or "",
            str(r.offered),
            str(r.answered),
            str(r.abandoned),
            pct(r.service_level_offered),
            pct(r.service_level_answered),
            sec(r.asa_s),
            pct(r.abandonment_rate),
            sec(r.aht_s),
        )
        for r in report.rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = []
    for cells in (head, *body):
        lines.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    return "\n".join(lines)
