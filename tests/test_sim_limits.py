"""Queue limits in both simulators: overflow, voicemail, callbacks, rejection, time-outs.

The contacts a limit moves or ends are booked in the queue they arrived in, and
the counts add up: offered = answered + abandoned + voicemail + rejected +
timed_out + still in the system (the SimPy harness checks this and the router's
own counters on every run).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from agner.sim.engine import AgentGroup, Dist, QueueLoad, SimResult, simulate
from agner.sim.simpy_harness import SimpyCenter, simulate_simpy

EXP = Dist("exponential", 60.0)


def run(engine: str, queues: list[QueueLoad], groups: list[AgentGroup], **kw: Any) -> SimResult:
    if engine == "fast":
        return simulate(queues, groups, **kw)
    return simulate_simpy(queues, groups, **kw)


def ended(f: dict[str, Any]) -> int:
    return int(f["answered"] + f["abandoned"] + f["voicemail"] + f["rejected"] + f["timed_out"])


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_max_wait_sends_callers_to_voicemail(engine: str) -> None:
    # Overloaded (1.5 erlang on one agent): many calls reach the 30 s limit.
    q = QueueLoad("q", 1 / 40, EXP, max_wait_s=30.0, overflow="voicemail")
    res = run(engine, [q], [AgentGroup("a", 1, {})], arrivals=3000, seed=5)
    f = res.queues["q"]
    assert f["voicemail"] > 300
    assert f["rejected"] == f["timed_out"] == f["abandoned"] == 0
    assert 0 <= f["offered"] - ended(f) <= 3  # the few still in the system at the end


def test_no_answered_call_waited_past_the_limit(tmp_path: Path) -> None:
    q = QueueLoad("q", 1 / 40, EXP, max_wait_s=30.0, overflow="voicemail")
    rec = tmp_path / "calls.csv"
    simulate([q], [AgentGroup("a", 1, {})], arrivals=3000, seed=5, records=rec)
    with rec.open() as fh:
        rows = list(csv.DictReader(fh))
    outcomes = {r["outcome"] for r in rows}
    assert outcomes == {"answered", "voicemail"}
    assert max(float(r["wait_s"]) for r in rows if r["outcome"] == "answered") <= 30.0
    voicemail = [float(r["wait_s"]) for r in rows if r["outcome"] == "voicemail"]
    assert min(voicemail) == pytest.approx(30.0, abs=1e-6)


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_a_full_queue_rejects_and_a_timed_out_call_ends(engine: str) -> None:
    full = QueueLoad("full", 1 / 30, EXP, max_waiting=2)
    slow = QueueLoad("slow", 1 / 30, EXP, require={1: 1}, max_wait_s=20.0)
    groups = [AgentGroup("a", 1, {}), AgentGroup("b", 1, {1: 1})]
    res = run(engine, [full, slow], groups, arrivals=4000, seed=2)
    assert res.queues["full"]["rejected"] > 100
    assert res.queues["slow"]["timed_out"] > 100
    for f in res.queues.values():
        assert 0 <= f["offered"] - ended(f) <= 4


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_overflow_counts_in_the_queue_called(engine: str) -> None:
    # `front` has no agents of its own after 10 s of waiting the calls go to
    # `back`'s agents; they stay `front`'s calls in the figures.
    back = QueueLoad("back", 0.0, EXP)
    front = QueueLoad("front", 1 / 120, EXP, require={1: 1}, max_wait_s=10.0, overflow=0)
    groups = [AgentGroup("back", 2, {})]
    res = run(engine, [back, front], groups, arrivals=1000, seed=4)
    f = res.queues["front"]
    assert f["overflowed"] == f["offered"] - (f["offered"] - ended(f))
    assert f["answered"] == f["overflowed"]
    assert f["asa_s"] is not None and f["asa_s"] >= 10.0
    assert res.queues["back"]["offered"] == 0


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_callbacks_outlast_their_callers_patience(engine: str) -> None:
    # Callers give up after 30 s on average, but after 5 s of waiting the queue
    # turns them into callbacks: those are answered later, never abandoned.
    q = QueueLoad(
        "q", 1 / 40, EXP, patience=Dist("exponential", 30.0), max_wait_s=5.0, overflow="callback"
    )
    res = run(engine, [q], [AgentGroup("a", 1, {})], arrivals=3000, seed=9)
    f = res.queues["q"]
    assert f["callbacks"] > 300
    no_limit = run(
        engine,
        [QueueLoad("q", 1 / 40, EXP, patience=Dist("exponential", 30.0))],
        [AgentGroup("a", 1, {})],
        arrivals=3000,
        seed=9,
    ).queues["q"]
    assert f["abandoned"] < no_limit["abandoned"] / 2


def test_simpy_checks_the_counts_with_limits() -> None:
    queues = [
        QueueLoad("back", 1 / 90, EXP),
        QueueLoad("front", 1 / 60, EXP, require={1: 1}, max_wait_s=15.0, overflow=0),
        QueueLoad("vm", 1 / 60, EXP, max_waiting=1, overflow="voicemail"),
    ]
    groups = [AgentGroup("all", 2, {}), AgentGroup("ones", 1, {1: 1})]
    center = SimpyCenter(queues, groups, seed=3, faults=None, check=True)
    res = center.run(arrivals=2000)
    assert res.queues["front"]["overflowed"] > 0
    assert res.queues["vm"]["voicemail"] > 0
    # _check_end ran (it fills in_system: waiting, ringing or talking at the end,
    # the last of which also count as answered) and the counts add up per queue.
    for name, f in res.queues.items():
        assert ended(f) <= f["offered"] <= ended(f) + center.in_system[name]


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_parallel_offers_in_simulation_answer_each_call_once(engine: str) -> None:
    # Simulated agents answer at once: ring-all gives each call to the first agent
    # rung, and the same figures as a single offer by the same strategy.
    single = QueueLoad("q", 1 / 20, EXP)
    ring_all = QueueLoad("q", 1 / 20, EXP, parallel=0)
    groups = [AgentGroup("a", 4, {})]
    one = run(engine, [single], groups, arrivals=2000, seed=8).queues["q"]
    all_ = run(engine, [ring_all], groups, arrivals=2000, seed=8).queues["q"]
    assert all_ == one
