"""The fast simulator (core/loop.pyx through sim/engine.py) against Erlang C and A.

Each check runs R seeded replications (R = 10 for Erlang C, 8 for Erlang A) and
asks that the analytic value lie in the replications' confidence interval
(Student t). The file makes 31 such checks, so each interval is at the
Bonferroni level 1 - 0.05/31: together they hold with 95% confidence. (With a
plain 95% interval per check, some one of 31 true checks would fail in three
runs out of four.) Four of them are multi-channel agents holding k chats each,
which n of them serve as an M/M/(k n) queue. Each configuration has its own
seeds, so a run either always passes or always fails, and sizes keep the file
to a few seconds.
"""

from __future__ import annotations

import math
import zlib
from statistics import mean, stdev
from typing import Any

import pytest

from agner.core._api import Channel, Strategy
from agner.sim.engine import AgentGroup, Dist, QueueLoad, simulate
from agner.sim.erlang import erlang_a, erlang_c_metrics

CHECKS = 31  # 4 metrics x 3 Erlang C cases + 5 x 3 Erlang A cases + 4 multi-channel
# Student t quantiles at 1 - 0.05 / (2 * CHECKS), by replications (df = R - 1);
# computed by integrating the t density (SciPy is not a dependency).
T_FAMILY = {8: 4.973, 10: 4.445}


def within_ci(samples: list[float], expected: float, what: str) -> None:
    r = len(samples)
    m = mean(samples)
    half = T_FAMILY[r] * stdev(samples) / math.sqrt(r)
    assert abs(m - expected) <= half + 1e-12, (
        f"{what}: simulated {m:.6g} +- {half:.3g} (family-wise 95%), theory {expected:.6g}"
    )


def replicate(
    servers: int,
    load: float,
    aht_s: float,
    patience_s: float | None,
    arrivals: int,
    reps: int,
) -> list[dict[str, float | int | None]]:
    rate = load / aht_s
    # Seeds of their own per configuration: replications of different checks
    # must not share random streams.
    base = zlib.crc32(f"{servers}/{load}/{aht_s}/{patience_s}".encode()) % 1_000_000 * 100
    out = []
    for seed in range(reps):
        res = simulate(
            [
                QueueLoad(
                    "q",
                    rate,
                    Dist("exponential", aht_s),
                    Dist("exponential", patience_s) if patience_s else None,
                )
            ],
            [AgentGroup("g", servers, {})],
            arrivals=arrivals,
            warmup_s=20 * aht_s,
            seed=base + seed,
        )
        out.append(res.overall)
    return out


@pytest.mark.parametrize(
    ("servers", "load", "arrivals"),
    [
        (1, 0.5, 40_000),  # M/M/1, light
        (14, 10.0, 40_000),  # the public check: 100 calls per 30 min, 180 s
        (100, 92.0, 100_000),  # heavy
    ],
)
def test_erlang_c(servers: int, load: float, arrivals: int) -> None:
    aht = 180.0
    theory = erlang_c_metrics(servers, load, aht, 20.0)
    runs = replicate(servers, load, aht, None, arrivals, 10)
    within_ci([float(r["p_wait"] or 0) for r in runs], theory.p_wait, "P(wait)")
    within_ci([float(r["service_level"] or 0) for r in runs], theory.service_level, "SL 20 s")
    within_ci([float(r["asa_s"] or 0) for r in runs], theory.asa_s, "ASA")
    within_ci([float(r["occupancy"] or 0) for r in runs], load / servers, "occupancy")
    assert all(r["abandoned"] == 0 for r in runs)


@pytest.mark.parametrize(
    ("servers", "load", "patience", "arrivals"),
    [
        (50, 60.0, 60.0, 60_000),  # overloaded, abandonment carries it
        (380, 360.0, 120.0, 200_000),  # the M/M/380+M model of the benchmark
        (1000, 980.0, 300.0, 300_000),
    ],
)
def test_erlang_a(servers: int, load: float, patience: float, arrivals: int) -> None:
    aht = 180.0
    theory = erlang_a(servers, load, aht, patience, 20.0)
    runs = replicate(servers, load, aht, patience, arrivals, 8)
    assert all(r["offered"] == arrivals and r["abandoned"] for r in runs)
    within_ci([float(r["p_wait"] or 0) for r in runs], theory.p_wait, "P(wait)")
    within_ci([float(r["p_abandon"] or 0) for r in runs], theory.p_abandon, "P(abandon)")
    within_ci([float(r["service_level"] or 0) for r in runs], theory.service_level, "SL")
    within_ci([float(r["asa_s"] or 0) for r in runs], theory.asa_s, "ASA")
    within_ci([float(r["occupancy"] or 0) for r in runs], theory.occupancy, "occupancy")


def chat_runs(strategy: Strategy, agents: int, k: int, load: float, aht: float) -> list[Any]:
    out = []
    for seed in range(10):
        res = simulate(
            [
                QueueLoad(
                    "chat",
                    load / aht,
                    Dist("exponential", aht),
                    channel=Channel.CHAT,
                    strategy=strategy,
                )
            ],
            [AgentGroup("g", agents, {}, capacity={Channel.CHAT: k})],
            arrivals=30_000,
            warmup_s=20 * aht,
            seed=7_000_000 + seed,
        )
        out.append({**res.overall, "contacts_held": res.contacts_held["overall"]})
    return out


def test_chat_agents_are_an_erlang_c_queue_of_their_slots() -> None:
    # 6 agents holding 3 chats each, no blocking between chats: 18 servers;
    # 14.4 erlangs, so P(wait), service level and ASA of M/M/18.
    agents, k, load, aht = 6, 3, 14.4, 180.0
    theory = erlang_c_metrics(agents * k, load, aht, 20.0)
    spread = chat_runs(Strategy.LONGEST_IDLE, agents, k, load, aht)
    within_ci([float(r["p_wait"] or 0) for r in spread], theory.p_wait, "P(wait)")
    within_ci([float(r["service_level"] or 0) for r in spread], theory.service_level, "SL")
    within_ci([float(r["asa_s"] or 0) for r in spread], theory.asa_s, "ASA")
    # M/M/c keeps A servers busy on average: A / n chats held per agent.
    within_ci([float(r["contacts_held"] or 0) for r in spread], load / agents, "held")
    assert all(r["abandoned"] == 0 and r["answered"] for r in spread)
    # Any strategy that leaves no chat waiting while a slot is free is the same
    # queue: LINEAR fills the first agents instead of spreading the chats, and
    # on the same random streams every wait is the same.
    packed = chat_runs(Strategy.LINEAR, agents, k, load, aht)
    for key in ("offered", "answered", "p_wait", "service_level", "asa_s", "contacts_held"):
        assert [r[key] for r in packed] == [r[key] for r in spread], key
    # Occupancy is the share of time an agent holds one chat or more: with 2.4
    # held per agent on average and at most 3, at least 80%; spreading the
    # chats keeps more agents occupied than packing them.
    occ_spread = mean(float(r["occupancy"] or 0) for r in spread)
    occ_packed = mean(float(r["occupancy"] or 0) for r in packed)
    assert load / (agents * k) <= occ_packed < occ_spread < 1.0


def small_center(seed: int) -> dict[str, object]:
    res = simulate(
        [
            QueueLoad(
                "sales",
                0.05,
                Dist("lognormal", 200, 120),
                Dist("gamma", 90, 60),
                require={0: 3},
                priority=1,
            ),
            QueueLoad(
                "support", 0.04, Dist("gamma", 300, 200), Dist("exponential", 150), require={1: 1}
            ),
            QueueLoad(
                "billing", 0.02, Dist("empirical", samples=(60.0, 120.0, 400.0)), require={2: 1}
            ),
        ],
        [
            AgentGroup("a", 8, {0: 5, 2: 2}, wrap_up_s=10),
            AgentGroup("b", 12, {1: 4}, wrap_up_s=20),
            AgentGroup("c", 5, {2: 4, 1: 2}),
        ],
        duration_s=4 * 3600,
        warmup_s=1800,
        seed=seed,
    )
    return {"queues": res.queues, "occupancy": res.occupancy, "events": res.events}


def test_same_seed_same_run_other_seed_other_run() -> None:
    assert small_center(7) == small_center(7)
    assert small_center(7) != small_center(8)


def test_counts_add_up() -> None:
    out = small_center(3)
    for name, q in out["queues"].items():  # type: ignore[attr-defined]
        assert q["offered"] > 100, name
        assert q["answered"] + q["abandoned"] <= q["offered"]
        assert 0 <= q["service_level"] <= q["service_level_answered"] <= 1
        assert q["p_abandon"] <= q["p_wait"] <= 1
    assert out["queues"]["billing"]["abandoned"] == 0  # type: ignore[index]
    for occ in out["occupancy"].values():  # type: ignore[attr-defined]
        assert occ is not None and 0 < occ < 1


def test_deterministic_handle_time_gives_exact_occupancy() -> None:
    # One agent, arrivals at 0.5/s... of 1 s talks: occupancy is the offered load.
    res = simulate(
        [QueueLoad("q", 0.5, Dist("deterministic", 1.0))],
        [AgentGroup("g", 4, {})],
        arrivals=200_000,
        seed=2,
    )
    assert res.overall["occupancy"] == pytest.approx(0.5 / 4, rel=0.01)
    # A classic agent holds one contact or none: contacts held is its occupancy.
    assert res.contacts_held == res.occupancy


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_contacts_held_count_every_chat_and_its_wrap_up(engine: str) -> None:
    # Little's law: 0.1 chats/s, each held 60 s talking and 5 s in wrap-up, on 4
    # agents holding up to 3 (never all busy): 0.1 x 65 / 4 = 1.625 per agent.
    from agner.sim.simpy_harness import simulate_simpy

    run = simulate if engine == "fast" else simulate_simpy
    res = run(
        [QueueLoad("q", 0.1, Dist("deterministic", 60.0), channel=Channel.CHAT)],
        [AgentGroup("g", 4, {}, wrap_up_s=5, capacity={Channel.CHAT: 3})],
        duration_s=200_000 if engine == "fast" else 50_000,
        warmup_s=600,
        seed=4,
    )
    assert res.contacts_held["g"] == pytest.approx(1.625, rel=0.03)
    # Occupied while holding one chat or more: more of the time than the share
    # of its capacity in use (1.625 / 3), and less than the mean it holds.
    occ = float(res.occupancy["g"] or 0)
    assert 1.625 / 3 < occ < 1.625


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "arrivals or duration_s"),
        ({"arrivals": 0}, "arrivals must be >= 1"),
        ({"duration_s": 10, "warmup_s": 20}, "longer than the warm-up"),
    ],
)
def test_refuses_bad_runs(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate([QueueLoad("q", 1, Dist("exponential", 1))], [AgentGroup("g", 1, {})], **kwargs)


def test_refuses_bad_load() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        simulate(
            [QueueLoad("q", -1, Dist("exponential", 1))], [AgentGroup("g", 1, {})], arrivals=10
        )
    with pytest.raises(ValueError, match="mean_s"):
        Dist("exponential", 0)
    with pytest.raises(ValueError, match="sd_s"):
        Dist("lognormal", 10)
    with pytest.raises(ValueError, match="unknown distribution"):
        Dist("weibull", 10)
    with pytest.raises(ValueError, match="samples"):
        Dist("empirical")


def test_rate_profile_by_interval() -> None:
    # A profile of four half-hours repeated for 200 "days" of two hours: closed,
    # quiet, busy, quiet. Arrivals follow it (thinning), and the per-interval
    # figures add up to the totals.
    rates = (0.0, 0.01, 0.05, 0.01)
    days = 200
    res = simulate(
        [QueueLoad("q", rates, Dist("exponential", 100), Dist("exponential", 60))],
        [AgentGroup("g", 4, {})],
        duration_s=days * 4 * 1800,
        interval_s=1800,
        seed=5,
    )
    assert [iv["start_s"] for iv in res.intervals] == [0, 1800, 3600, 5400]
    offered = [iv["overall"]["offered"] for iv in res.intervals]
    assert offered[0] == 0
    for rate, n in zip(rates[1:], offered[1:], strict=True):
        expected = rate * 1800 * days
        assert abs(n - expected) <= 4 * math.sqrt(expected)  # Poisson count, 4 sd
    assert sum(offered) == res.overall["offered"]
    for key in ("answered", "abandoned"):
        assert sum(iv["overall"][key] for iv in res.intervals) == res.overall[key]
    # The busy half-hour is worse off than the quiet ones.
    p_ab = [iv["overall"]["p_abandon"] for iv in res.intervals]
    assert p_ab[2] > p_ab[1] and p_ab[2] > p_ab[3]


def test_profile_needs_intervals() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        simulate(
            [QueueLoad("q", (0.1, 0.2), Dist("exponential", 1))],
            [AgentGroup("g", 1, {})],
            arrivals=10,
        )
    with pytest.raises(ValueError, match="same intervals"):
        simulate(
            [
                QueueLoad("a", (0.1, 0.2), Dist("exponential", 1)),
                QueueLoad("b", (0.1, 0.2, 0.3), Dist("exponential", 1)),
            ],
            [AgentGroup("g", 1, {})],
            arrivals=10,
            interval_s=60,
        )


def test_shifts_decide_when_contacts_can_be_answered() -> None:
    # One two-hour day in half-hours; agents work 00:30 to 01:30 only.
    res = simulate(
        [QueueLoad("q", (0.05,) * 4, Dist("exponential", 60), Dist("exponential", 30))],
        [AgentGroup("g", 5, {}, shifts=((1800, 5400),))],
        duration_s=7200,
        interval_s=1800,
        seed=9,
    )
    answered = [iv["overall"]["answered"] for iv in res.intervals]
    offered = [iv["overall"]["offered"] for iv in res.intervals]
    assert min(offered) > 50
    # Before the shift nobody is answered at once: the few patient enough were
    # answered when it began.
    assert res.intervals[0]["overall"]["p_wait"] == 1.0
    assert answered[0] <= 3
    assert answered[1] > 0.8 * offered[1] and answered[2] > 0.8 * offered[2]
    assert answered[3] == 0  # after it: nobody takes new contacts


def test_a_busy_agent_finishes_its_contact_after_its_shift() -> None:
    from agner import AgentState, Router
    from agner.core.loop import EventLoop

    r = Router()
    r.add_queue(ring_timeout_us=0)
    agents = [r.add_agent({}) for _ in range(2)]
    loop = EventLoop(
        r,
        [1.0],
        [("deterministic", 1000.0, 0.0, None)],
        [("none", 0.0, 0.0, None)],
        [20_000_000],
        3,
        0,
        0,
        [(a, 0, 100_000_000) for a in agents],
    )
    loop.run(-1, 2_000_000_000)  # 2000 s: shifts ended at 100 s, talks at ~1000 s
    for a in agents:
        st = r.agent_stats(a, r.now)
        assert st.state == AgentState.LOGGED_OUT
        assert st.handled == 1 and st.talk_time_us == 1_000_000_000


def test_shifts_are_checked() -> None:
    with pytest.raises(ValueError, match="overlap"):
        AgentGroup("g", 1, {}, shifts=((0, 100), (50, 200)))
    with pytest.raises(ValueError, match="start_s < end_s"):
        AgentGroup("g", 1, {}, shifts=((100, 100),))


def test_progress_slices_change_nothing() -> None:
    seen: list[float] = []
    args = (
        [QueueLoad("q", 0.05, Dist("exponential", 100), Dist("exponential", 60))],
        [AgentGroup("g", 5, {})],
    )
    whole = simulate(*args, arrivals=5000, warmup_s=600, seed=4)
    sliced = simulate(*args, arrivals=5000, warmup_s=600, seed=4, progress=seen.append)
    assert sliced.queues == whole.queues and sliced.overall == whole.overall
    assert len(seen) == 50 and seen[-1] == 1.0 and seen == sorted(seen)
    by_time = simulate(*args, duration_s=20_000, warmup_s=600, seed=4)
    sliced = simulate(*args, duration_s=20_000, warmup_s=600, seed=4, progress=lambda s: None)
    assert sliced.queues == by_time.queues


def test_queue_occupancy_is_that_of_the_agents_who_can_serve_it() -> None:
    res = simulate(
        [
            QueueLoad("a", 0.05, Dist("exponential", 60), require={0: 1}),
            QueueLoad("b", 0.02, Dist("exponential", 60), require={1: 1}),
        ],
        [AgentGroup("as", 5, {0: 1}), AgentGroup("bs", 5, {1: 1})],
        arrivals=50_000,
        seed=6,
    )
    assert res.queues["a"]["occupancy"] == res.occupancy["as"]
    assert res.queues["b"]["occupancy"] == res.occupancy["bs"]
    assert res.queues["a"]["occupancy"] == pytest.approx(0.05 * 60 / 5, rel=0.03)


def test_a_multi_channel_agent_finishes_all_its_chats_after_its_shift() -> None:
    from agner import AgentState, Router
    from agner.core.loop import EventLoop
    from agner.sim.engine import arrival_chain

    r = Router()
    q = QueueLoad("chat", 1.0, Dist("deterministic", 1000.0), channel=Channel.CHAT)
    r.add_queue(ring_timeout_us=0)
    agents = AgentGroup("g", 2, {}, wrap_up_s=30, capacity={Channel.CHAT: 3}).add_agents(r)
    loop = EventLoop(
        r,
        [1.0],
        [q.handle.spec()],
        [("none", 0.0, 0.0, None)],
        [20_000_000],
        3,
        0,
        0,
        [(a, 0, 100_000_000) for a in agents],
        None,
        [arrival_chain(r, 0, q)],
        [int(q.channel)],
    )
    loop.run(-1, 2_000_000_000)  # 2000 s: shifts ended at 100 s, chats at ~1000 s
    for a in agents:
        st = r.agent_stats(a, r.now)
        # Three chats each at once, none after the shift, and out once the last ends.
        assert st.state == AgentState.LOGGED_OUT
        assert st.handled == 3 and st.talk_time_us == 3_000_000_000
        assert st.time_in_state_us[AgentState.WRAP_UP] == 0  # the wrap-ups were cut


def test_the_event_loop_checks_chains_and_channels() -> None:
    from agner import Router
    from agner.core.loop import EventLoop

    r = Router()
    r.add_queue(ring_timeout_us=0)
    args = ([1.0], [("deterministic", 1.0, 0.0, None)], [("none", 0.0, 0.0, None)], [0], 1, 0)
    with pytest.raises(ValueError, match="together"):
        EventLoop(r, *args, 0, (), None, [0])
    with pytest.raises(ValueError, match="one chain and one channel per queue"):
        EventLoop(r, *args, 0, (), None, [0, 0], [0, 0])
    with pytest.raises(ValueError, match="bad chain"):
        EventLoop(r, *args, 0, (), None, [0], [4])
    with pytest.raises(ValueError, match="bad chain"):
        EventLoop(r, *args, 0, (), None, [99], [0])


def test_multi_channel_groups_are_checked() -> None:
    from agner import ConfigError

    with pytest.raises(ValueError, match="blocks needs capacity"):
        AgentGroup("g", 1, {}, blocks={Channel.CHAT: [Channel.VOICE]})
    # Values are the router's to check, with its message.
    q = [QueueLoad("q", 0.1, Dist("exponential", 60.0), channel=Channel.CHAT)]
    with pytest.raises(ConfigError, match="capacity"):
        simulate(q, [AgentGroup("g", 1, {}, capacity={Channel.CHAT: 99})], arrivals=10)
