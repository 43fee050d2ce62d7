"""Interval reports from interaction records, against figures worked out by hand."""

from __future__ import annotations

import io
from typing import Any

import pytest

from agner.crm import Interaction, InvalidInput, ReportRow
from agner.crm.report import COLUMNS, format_table, write_csv

pytest_plugins = ["_pg"]

S = 1_000_000
B = 944_444 * 1800 * S  # a half-hour boundary: 2023-11-14T22:00:00Z
HALF = 1800 * S


def contact(
    at: int,
    queue: str,
    outcome: str,
    wait_s: int,
    talk_s: int = 0,
    wrap_s: int | None = None,
    agent: str | None = None,
) -> Interaction:
    answered = B + at * S + wait_s * S if outcome == "answered" else None
    end = (answered + talk_s * S) if answered is not None else B + (at + wait_s) * S
    return Interaction(
        arrived_us=B + at * S,
        answered_us=answered,
        ended_us=end,
        wrap_up_end_us=end + wrap_s * S if wrap_s is not None else None,
        outcome=outcome,  # type: ignore[arg-type]
        queue=queue,
        agent=agent,
    )


DAY = [
    # first half hour
    contact(0, "sales", "answered", 10, 100, 10, "ann"),  # handle 110
    contact(60, "sales", "answered", 40, 60, None, "bob"),  # handle 60, not within 20 s
    contact(120, "sales", "abandoned", 30),
    contact(200, "support", "answered", 5, 200, 0, "ann"),  # handle 200
    contact(300, "support", "overflowed", 60),
    # second half hour
    contact(1800, "sales", "answered", 20, 30, 30, "bob"),  # exactly at the threshold
    contact(2800, "sales", "abandoned", 15, agent="bob"),  # hung up while bob's phone rang
]


def row(rep: Any, start: int, scope: str, name: str | None) -> ReportRow:
    key = (start, scope, name)
    (found,) = [r for r in rep.rows if (r.interval_start_us, r.scope, r.name) == key]
    return found


def test_half_hour_report_per_queue_and_agent(store: Any) -> None:
    store.record_interactions("acme", DAY)
    rep = store.report("acme", interval_s=1800, threshold_s=20)
    assert len(rep.rows) == 5 + 3  # all, each queue, each agent, per interval
    sales = row(rep, B, "queue", "sales")
    assert (sales.offered, sales.answered, sales.abandoned, sales.other) == (3, 2, 1, 0)
    assert sales.answered_within_threshold == 1
    assert sales.service_level_offered == pytest.approx(1 / 3)
    assert sales.service_level_answered == pytest.approx(1 / 2)
    assert sales.asa_s == pytest.approx(25.0)
    assert sales.abandonment_rate == pytest.approx(1 / 3)
    assert sales.aht_s == pytest.approx(85.0)
    support = row(rep, B, "queue", "support")
    assert (support.offered, support.answered, support.abandoned, support.other) == (2, 1, 0, 1)
    assert (support.service_level_offered, support.service_level_answered) == (0.5, 1.0)
    assert (support.asa_s, support.abandonment_rate, support.aht_s) == (5.0, 0.0, 200.0)
    total = row(rep, B, "all", None)
    assert (total.offered, total.answered, total.abandoned, total.other) == (5, 3, 1, 1)
    assert total.service_level_offered == pytest.approx(2 / 5)
    assert total.service_level_answered == pytest.approx(2 / 3)
    assert total.asa_s == pytest.approx(55 / 3)
    assert total.aht_s == pytest.approx(370 / 3)
    ann = row(rep, B, "agent", "ann")
    assert (ann.offered, ann.answered, ann.asa_s, ann.aht_s) == (2, 2, 7.5, 155.0)
    second = row(rep, B + HALF, "queue", "sales")
    assert (second.offered, second.answered, second.abandoned) == (2, 1, 1)
    assert second.answered_within_threshold == 1  # wait == T counts as within
    assert (second.asa_s, second.aht_s, second.abandonment_rate) == (20.0, 60.0, 0.5)
    bob = row(rep, B + HALF, "agent", "bob")
    assert (bob.offered, bob.answered, bob.abandoned) == (2, 1, 1)
    assert [r.interval_start_us for r in rep.rows] == sorted(r.interval_start_us for r in rep.rows)


def test_hourly_report_window_and_threshold(store: Any) -> None:
    store.record_interactions("acme", DAY)
    hourly = store.report("acme", interval_s=3600, threshold_s=40, agents=False)
    assert {r.scope for r in hourly.rows} == {"all", "queue"}
    sales = row(hourly, B - B % (3600 * S), "queue", "sales")
    assert (sales.offered, sales.answered, sales.answered_within_threshold) == (5, 3, 3)
    later = store.report("acme", interval_s=900, start_us=B + HALF, end_us=B + 2 * HALF)
    assert {r.interval_start_us for r in later.rows} == {B + HALF, B + HALF + 900 * S}
    quiet = row(later, B + HALF + 900 * S, "agent", "bob")
    assert (quiet.offered, quiet.answered, quiet.asa_s, quiet.aht_s) == (1, 0, None, None)
    assert quiet.service_level_answered is None and quiet.abandonment_rate == 1.0


@pytest.mark.parametrize("interval", [0, 45, 7 * 60, 86_400 * 2, -1800])
def test_interval_must_divide_a_day(store: Any, interval: int) -> None:
    with pytest.raises(InvalidInput) as e:
        store.report("acme", interval_s=interval)
    assert e.value.field == "interval_s"


def test_csv_and_table_output(store: Any) -> None:
    store.record_interactions("acme", DAY)
    rep = store.report("acme", interval_s=1800)
    out = io.StringIO()
    write_csv(rep, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 1 + len(rep.rows)
    assert lines[1] == ("2023-11-14T22:00:00Z,all,,5,3,1,1,2,0.4000,0.6667,18.3333,0.2000,123.3333")
    table = format_table(rep).splitlines()
    assert "SL 20s/off" in table[0] and len(table) == 1 + len(rep.rows)
    assert table[1].split()[:3] == ["2023-11-14", "22:00", "all"]
