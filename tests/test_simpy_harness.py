"""The SimPy harness (sim/simpy_harness.py): the real router in an independent model.

- single skill against Erlang C and Erlang A (9 checks, Bonferroni at 1 - 0.05/9);
- the multi-skill example run by both engines: every per-queue figure agrees
  within the combined confidence interval (12 checks, Bonferroni at 1 - 0.05/12);
  so does the blended voice and chat example (12 checks: 8 per queue, and the
  contacts held of each of its 4 groups);
- invariants under faults (ring-no-answer, logout mid-contact, a 10x burst);
- ``agner simulate --engine simpy``.

Every run is seeded, so the file either always passes or always fails.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from statistics import mean, stdev

import pytest

from agner.cli import main
from agner.sim.engine import AgentGroup, Dist, QueueLoad, SimResult
from agner.sim.erlang import erlang_a, erlang_c_metrics
from agner.sim.scenario import Scenario, center_of, load_scenario, run_scenario
from agner.sim.simpy_harness import (
    Faults,
    SimpyCenter,
    run_scenario_simpy,
    simulate_simpy,
)

ROOT = Path(__file__).resolve().parent.parent
MULTISKILL = str(ROOT / "examples" / "multiskill.toml")
BLENDED = str(ROOT / "examples" / "blended.toml")

# Student t quantiles at 1 - 0.05 / (2 * checks) (from scipy.stats.t.ppf; SciPy is
# not a dependency).
T_ERLANG = 4.655  # 9 checks, df = 5 (6 replications)
T_ENGINES = 3.808  # 12 checks, df = 9 (10 replications per engine, conservative)


def erlang_runs(load: float, patience: float | None, seed0: int) -> list[dict[str, float]]:
    out = []
    for seed in range(seed0, seed0 + 6):
        res = simulate_simpy(
            [
                QueueLoad(
                    "q",
                    load / 180.0,
                    Dist("exponential", 180.0),
                    Dist("exponential", patience) if patience else None,
                )
            ],
            [AgentGroup("g", 14, {})],
            arrivals=5000,
            warmup_s=3600,
            seed=seed,
        )
        assert res.overall["offered"] == 5000
        out.append({k: float(v or 0) for k, v in res.overall.items()})
    return out


def within_ci(runs: list[dict[str, float]], key: str, expected: float) -> None:
    xs = [r[key] for r in runs]
    m, half = mean(xs), T_ERLANG * stdev(xs) / math.sqrt(len(xs))
    assert abs(m - expected) <= half, f"{key}: simpy {m:.5g} +- {half:.3g}, theory {expected:.5g}"


def test_single_skill_against_erlang_c() -> None:
    theory = erlang_c_metrics(14, 10.0, 180.0, 20.0)
    runs = erlang_runs(10.0, None, 1000)
    assert all(r["abandoned"] == 0 for r in runs)
    within_ci(runs, "p_wait", theory.p_wait)
    within_ci(runs, "service_level", theory.service_level)
    within_ci(runs, "asa_s", theory.asa_s)
    within_ci(runs, "occupancy", 10.0 / 14)


def test_single_skill_against_erlang_a() -> None:
    theory = erlang_a(14, 14.0, 180.0, 120.0, 20.0)
    runs = erlang_runs(14.0, 120.0, 2000)
    # At a load equal to the agents, only abandonment keeps the queue finite.
    assert all(r["offered"] == 5000 and r["abandoned"] > 0 for r in runs)
    within_ci(runs, "p_wait", theory.p_wait)
    within_ci(runs, "p_abandon", theory.p_abandon)
    within_ci(runs, "service_level", theory.service_level)
    within_ci(runs, "asa_s", theory.asa_s)
    within_ci(runs, "occupancy", theory.occupancy)


def test_multiskill_center_agrees_between_engines() -> None:
    sc = load_scenario(MULTISKILL)
    reps = 10
    fast = [run_scenario(sc, seed=500 + i) for i in range(reps)]
    slow = [run_scenario_simpy(sc, seed=500 + i) for i in range(reps)]
    assert len(sc.queues) >= 3 and len(sc.agent_groups) >= 4
    problems = []
    for q in fast[0].queues:
        for key in ("p_abandon", "asa_s", "service_level", "occupancy"):
            a = [float(r.queues[q][key] or 0) for r in fast]
            b = [float(r.queues[q][key] or 0) for r in slow]
            se = math.sqrt(stdev(a) ** 2 / reps + stdev(b) ** 2 / reps)
            if abs(mean(a) - mean(b)) > T_ENGINES * se:
                bound = T_ENGINES * se
                problems.append(
                    f"{q}.{key}: fast {mean(a):.4g}, simpy {mean(b):.4g}, bound {bound:.3g}"
                )
    assert not problems, "; ".join(problems)
    # The same fields, with per-interval figures.
    assert fast[0].queues.keys() == slow[0].queues.keys()
    assert fast[0].overall.keys() == slow[0].overall.keys()
    assert fast[0].occupancy.keys() == slow[0].occupancy.keys()
    assert len(fast[0].intervals) == len(slow[0].intervals) == 17


def run_under_faults(
    path: str, burst: float, hours: float
) -> tuple[Scenario, SimpyCenter, SimResult]:
    # Ring-no-answer, logouts mid-contact and a burst from 1 h to 1 h 30; the
    # harness checks as it goes and at the end.
    sc = load_scenario(path)
    queues, groups = center_of(sc)
    center = SimpyCenter(
        queues,
        groups,
        seed=3,
        warmup_s=600,
        interval_s=sc.interval_s,
        faults=Faults(no_answer_prob=0.05, logout_prob=0.02, burst=(3600, 5400, burst)),
        check=True,
    )
    res = center.run(duration_s=hours * 3600)
    for name, q in res.queues.items():
        offered, answered, abandoned = (
            int(q[k] or 0) for k in ("offered", "answered", "abandoned")
        )
        assert 0 <= offered - answered - abandoned <= center.in_system[name]
    return sc, center, res


def test_invariants_hold_under_faults() -> None:
    sc, center, res = run_under_faults(MULTISKILL, 10.0, 4)
    queues = sc.queues
    assert center.rona > 20 and center.fault_logouts > 5
    # The burst: ten times the calls of its neighbours in the interval it covers.
    per_interval = [int(iv["overall"]["offered"] or 0) for iv in res.intervals]
    assert per_interval[2] > 5 * max(per_interval[1], per_interval[3])
    assert res.overall["p_abandon"] is not None and float(res.overall["p_abandon"]) > 0.2
    # Router books agree with the harness's (all arrivals, warm-up included).
    r = center.r
    assert sum(r.queue_stats(i, r.now).offered for i in range(len(queues))) == center.all_arrivals


def test_checks_catch_a_lost_contact() -> None:
    sc = load_scenario(MULTISKILL)
    queues, groups = center_of(sc)
    center = SimpyCenter(queues, groups, seed=1, interval_s=sc.interval_s)
    real = center._arrive

    def losing(q: int, t: int, counted: bool) -> None:
        real(q, t, counted)
        if center.all_arrivals == 50:
            center.stats[q][center._interval(t)]["offered"] += 1  # a contact the books lost

    center._arrive = losing  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="offered"):
        center.run(duration_s=3600)


def test_cli_engine_simpy(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", MULTISKILL, "--duration", "7200", "--replications", "2", "--json"]
    assert main([*argv, "--engine", "simpy"]) == 0
    slow = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    fast = json.loads(capsys.readouterr().out)
    assert slow.keys() == fast.keys()
    assert slow["queues"]["sales"].keys() == fast["queues"]["sales"].keys()
    assert slow["replications"] == 2 and slow["calls"] > 0
    assert main(["simulate", MULTISKILL, "--duration", "3600", "--engine", "simpy"]) == 0
    assert "occupancy:" in capsys.readouterr().out


def test_cli_engine_bad_use(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", MULTISKILL, "--engine", "slow"])
    assert exc.value.code == 2
    capsys.readouterr()
    records = str(tmp_path / "r.csv")
    assert main(["simulate", MULTISKILL, "--engine", "simpy", "--records", records]) == 2
    assert "--records" in capsys.readouterr().err
    assert main(["simulate", MULTISKILL, "--engine", "simpy", "--calls", "0"]) == 2


def test_seeded_and_checked_arguments() -> None:
    q = [QueueLoad("q", 0.05, Dist("exponential", 180.0), Dist("exponential", 60.0))]
    g = [AgentGroup("g", 10, {}, wrap_up_s=5)]
    one = simulate_simpy(q, g, arrivals=500, seed=4)
    assert one.overall == simulate_simpy(q, g, arrivals=500, seed=4).overall
    assert one.overall != simulate_simpy(q, g, arrivals=500, seed=5).overall
    with pytest.raises(ValueError, match="arrivals or duration_s"):
        simulate_simpy(q, g)
    with pytest.raises(ValueError, match="warm-up"):
        simulate_simpy(q, g, duration_s=10, warmup_s=20)
    with pytest.raises(ValueError, match="no_answer_prob"):
        simulate_simpy(q, g, arrivals=10, no_answer_prob=2.0)
    with pytest.raises(ValueError, match="profile"):
        simulate_simpy([QueueLoad("q", [0.1, 0.2], Dist("exponential", 1.0))], g, arrivals=10)


@pytest.mark.parametrize("chats", [0, 3])
def test_a_busy_agent_finishes_its_contacts_after_its_shift(chats: int) -> None:
    # chats = 0: classic agents, one call each; else agents holding that many chats.
    from agner.core._api import AgentState, Channel

    channel = Channel.CHAT if chats else Channel.VOICE
    capacity = {Channel.CHAT: chats} if chats else None
    center = SimpyCenter(
        [QueueLoad("q", 1.0, Dist("deterministic", 1000.0), channel=channel)],
        [AgentGroup("g", 2, {}, wrap_up_s=30, shifts=((0, 100),), capacity=capacity)],
        seed=3,
    )
    center.run(duration_s=2000)
    n = max(chats, 1)
    for a in range(2):
        st = center.r.agent_stats(a, center.r.now)
        assert st.state == AgentState.LOGGED_OUT
        assert st.handled == n and st.talk_time_us == n * 1_000_000_000
        assert st.time_in_state_us[AgentState.WRAP_UP] == 0  # logged out, wrap-up cancelled


def test_simpy_replications_run_in_a_pool_like_anywhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "simulate",
        MULTISKILL,
        "--engine",
        "simpy",
        "--duration",
        "7200",
        "--replications",
        "2",
        "--seed",
        "3",
        "--json",
    ]
    assert main([*argv, "--workers", "2"]) == 0
    pooled = json.loads(capsys.readouterr().out)
    assert main([*argv, "--workers", "1"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert pooled["queues"] == alone["queues"] and pooled["replications"] == 2


def test_estimated_wait_is_unbiased_on_mmn() -> None:
    # bench/ewt_error.py measures it at length; here a seeded M/M/10 at 90%
    # checks that the harness records it and that it is about right on average.
    q = QueueLoad("q", 0.9 * 10 / 180.0, Dist("exponential", 180.0))
    center = SimpyCenter([q], [AgentGroup("a", 10, {})], seed=11, warmup_s=3600, record_ewt=True)
    center.run(arrivals=8000)
    samples = center.ewt_samples
    assert samples is not None and len(samples) > 2000
    est = sum(e for e, _ in samples) / len(samples)
    act = sum(a for _, a in samples) / len(samples)
    assert abs(est - act) < 0.1 * act


def test_blended_voice_and_chat_agree_between_engines() -> None:
    # Voice and chat share blended agents (a call closes their chats, a chat
    # closes voice); the harness checks at every offer that no agent is over a
    # channel's capacity or holds a call with a chat (check=True).
    sc = load_scenario(BLENDED)
    reps = 10
    fast = [run_scenario(sc, seed=900 + i) for i in range(reps)]
    slow = [run_scenario_simpy(sc, seed=900 + i) for i in range(reps)]
    problems = []
    for q in ("voice", "chat"):
        for key in ("p_abandon", "asa_s", "service_level", "occupancy"):
            a = [float(r.queues[q][key] or 0) for r in fast]
            b = [float(r.queues[q][key] or 0) for r in slow]
            se = math.sqrt(stdev(a) ** 2 / reps + stdev(b) ** 2 / reps)
            if abs(mean(a) - mean(b)) > T_ENGINES * se:
                problems.append(f"{q}.{key}: fast {mean(a):.4g}, simpy {mean(b):.4g}")
    for g in ("voice", "chat", "blended", "blended-morning"):
        a = [float(r.contacts_held[g] or 0) for r in fast]
        b = [float(r.contacts_held[g] or 0) for r in slow]
        se = math.sqrt(stdev(a) ** 2 / reps + stdev(b) ** 2 / reps)
        if abs(mean(a) - mean(b)) > T_ENGINES * se:
            problems.append(f"{g}.contacts_held: fast {mean(a):.4g}, simpy {mean(b):.4g}")
    assert not problems, "; ".join(problems)
    for r in fast + slow:
        for f in r.queues.values():
            done = sum(int(f[k] or 0) for k in ("answered", "abandoned"))
            assert 0 < done <= int(f["offered"] or 0)
        assert all(0 < float(v or 0) < 1 for v in r.occupancy.values())
        # Voice agents hold one call or none; chat agents often several chats.
        assert r.contacts_held["voice"] == r.occupancy["voice"]
        assert float(r.contacts_held["chat"] or 0) > 1.5 > float(r.occupancy["chat"] or 0)


def test_blended_agents_never_exceed_their_channels_in_the_fast_engine(tmp_path: Path) -> None:
    # The fast engine's records: no agent talks on a call while it holds a chat,
    # nor holds more chats at once than its group's capacity.
    sc = load_scenario(BLENDED)
    path = tmp_path / "records.csv"
    run_scenario(sc, records=str(path))
    groups = [(g.name, g.capacity or {}) for g in sc.agent_groups for _ in range(g.count)]
    spans: dict[int, list[tuple[float, int, str]]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["outcome"] == "answered":
                a = int(row["agent"])
                # Ends before starts at the same time: an agent may take the
                # next contact the instant it completes one (no wrap-up here
                # would be shorter than 1 us).
                spans.setdefault(a, []).append((float(row["answered_s"]), 1, row["queue"]))
                spans[a].append((float(row["ended_s"]), -1, row["queue"]))
    assert len(spans) == sum(g.count for g in sc.agent_groups)  # everybody worked
    most_chats: dict[str, int] = {}
    for a, events in spans.items():
        name, cap = groups[a]
        held = {"voice": 0, "chat": 0}
        for _, step, q in sorted(events, key=lambda e: (e[0], e[1])):
            held[q] += step
            assert held["voice"] <= cap.get("voice", 1 if not cap else 0), (a, held)
            assert held["chat"] <= cap.get("chat", 1 if not cap else 0), (a, held)
            assert not (held["voice"] and held["chat"]), (a, held)
            most_chats[name] = max(most_chats.get(name, 0), held["chat"])
    # The chat agents do hold several chats at once, up to their capacity.
    assert most_chats == {"voice": 0, "chat": 3, "blended": 2, "blended-morning": 2}


def test_checks_catch_an_agent_over_its_capacity() -> None:
    import dataclasses

    from agner.core._api import Channel

    g = AgentGroup("g", 2, {}, capacity={Channel.CHAT: 3})
    center = SimpyCenter(
        [QueueLoad("q", 0.05, Dist("exponential", 300.0), channel=Channel.CHAT)], [g], seed=2
    )
    # The harness believes two chats each; the router was given three.
    for ag in center.agents:
        ag.group = dataclasses.replace(g, capacity={Channel.CHAT: 2})
    with pytest.raises(AssertionError, match="over capacity"):
        center.run(duration_s=3600)
    # And a chat with a call, where the group closes voice for chats.
    blended = AgentGroup("b", 1, {}, capacity={Channel.CHAT: 2, Channel.VOICE: 1})
    center = SimpyCenter(
        [
            QueueLoad("v", 0.01, Dist("exponential", 300.0)),
            QueueLoad("c", 0.01, Dist("exponential", 300.0), channel=Channel.CHAT),
        ],
        [blended],
        seed=2,
    )
    center.run(duration_s=3 * 3600)  # the router's default: a chat closes voice
    center = SimpyCenter(
        [
            QueueLoad("v", 0.01, Dist("exponential", 300.0)),
            QueueLoad("c", 0.01, Dist("exponential", 300.0), channel=Channel.CHAT),
        ],
        [dataclasses.replace(blended, blocks={Channel.CHAT: [], Channel.VOICE: []})],
        seed=2,
    )
    for ag in center.agents:
        ag.group = blended  # the harness expects the default blocks
    with pytest.raises(AssertionError, match="holds"):
        center.run(duration_s=3 * 3600)


def test_blended_invariants_hold_under_faults() -> None:
    # Ring-no-answer, logouts mid-contact and a burst, with agents holding several
    # chats: the harness checks capacities, blocks and its books as it goes. A
    # multi-channel agent that did not answer is NOT_READY behind its other chats,
    # and comes back after its break like any other.
    sc, center, res = run_under_faults(BLENDED, 3.0, 6)
    assert center.rona > 50 and center.fault_logouts > 10
    # The agents of the groups "chat" and "blended" (no shifts), after the voice ones.
    names = [g.name for g in sc.agent_groups]
    assert names[:3] == ["voice", "chat", "blended"]
    first = sc.agent_groups[0].count
    for a in range(first, first + sc.agent_groups[1].count + sc.agent_groups[2].count):
        assert center.r.agent_stats(a, center.r.now).handled > 60, f"agent {a} was lost"
    assert res.overall["offered"]
