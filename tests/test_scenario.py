"""Scenario files: the examples run, and nonsense is refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from agner.sim.scenario import ScenarioError, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parent.parent

BASE = """
seed = 3
calls = 2000
[[queues]]
name = "sales"
require = { sales = 2 }
[[agent_groups]]
name = "g"
count = 5
skills = { sales = 3 }
[[arrivals]]
queue = "sales"
rate_per_s = 0.02
handle = { dist = "exponential", mean_s = 180 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["mm380.toml", "multiskill.toml", "blended.toml"])
def test_examples_run(name: str) -> None:
    sc = load_scenario(ROOT / "examples" / name)
    res = run_scenario(sc, calls=20_000)
    assert res.overall["offered"] == 20_000
    assert res.arrivals == 20_000
    for q in res.queues.values():
        assert q["answered"] + q["abandoned"] <= q["offered"]  # type: ignore[operator]


def test_base_scenario_runs_and_repeats(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, BASE))
    first = run_scenario(sc)
    assert first.queues == run_scenario(sc).queues
    assert first.queues != run_scenario(sc, seed=4).queues
    assert run_scenario(sc, duration_s=36_000).simulated_s == pytest.approx(36_000, rel=0.01)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("rate_per_s = 0.02", "rate_per_s = -1"), "arrivals[0].rate_per_s"),
        (("require = { sales = 2 }", "require = { spanish = 1 }"), "spanish"),
        (("require = { sales = 2 }", "require = { sales = 9 }"), "no agent group can ever serve"),
        (('queue = "sales"', 'queue = "nope"'), "arrivals[0].queue"),
        (("count = 5", "count = -2"), "agent_groups[0] (g).count"),
        (
            ('dist = "exponential", mean_s = 180', 'dist = "lognormal", mean_s = 180'),
            "arrivals[0].handle: lognormal: sd_s",
        ),
        (('dist = "exponential"', 'dist = "weibull"'), "handle.dist"),
        (("calls = 2000", "calls = 0"), "calls must be >= 1"),
        (("calls = 2000", "calls = 2000\nbogus = 1"), "bogus"),
        (("count = 5", 'count = "five"'), "count"),
        (
            (
                "require = { sales = 2 }",
                "steps = [ { after_s = 0, require = { sales = 2 } }, { after_s = 0 } ]",
            ),
            "steps[1].after_s must exceed",
        ),
        (
            ("require = { sales = 2 }", 'require = { sales = 2 }\noverflow = "nowhere"'),
            "overflow: 'nowhere' is not",
        ),
        (
            ("require = { sales = 2 }", 'require = { sales = 2 }\nwhen_unstaffed = "overflow"'),
            "needs an overflow target",
        ),
        (('name = "sales"', 'name = "sales"\nstrategy = "fastest"'), "unknown strategy"),
    ],
)
def test_nonsense_is_refused_naming_the_field(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    old, new = change
    assert old in BASE
    with pytest.raises(ScenarioError, match=None) as info:
        load_scenario(write(tmp_path, BASE.replace(old, new, 1)))
    assert field in str(info.value)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "[[queues]\nname ="))


def test_shifts_in_scenarios(tmp_path: Path) -> None:
    text = BASE.replace("count = 5", "count = 5\nshifts = [ { start_s = 0, end_s = 3600 } ]")
    sc = load_scenario(write(tmp_path, text))
    res = run_scenario(sc, duration_s=7200)
    # Nobody works the second hour: its callers wait (and, never hanging up, stay).
    assert res.overall["answered"] < res.overall["offered"]
    bad = BASE.replace("count = 5", "count = 5\nshifts = [ { start_s = 50, end_s = 10 } ]")
    with pytest.raises(ScenarioError, match="agent_groups"):
        load_scenario(write(tmp_path, bad))


def test_a_run_length_may_come_from_the_command_line(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, BASE.replace("calls = 2000\n", "")))
    with pytest.raises(ScenarioError, match="calls"):
        run_scenario(sc)
    assert run_scenario(sc, calls=500).arrivals == 500


HISTORY = """
seed = 4
interval_s = 1800
duration_s = 7200
[[queues]]
name = "sales"
[[agent_groups]]
name = "g"
count = 6
skills = { sales = 1 }
[[arrivals]]
queue = "sales"
history_csv = "sales.csv"
handle = { dist = "exponential", mean_s = 100 }
"""


def test_arrivals_from_a_csv_of_history(tmp_path: Path) -> None:
    # Two days of four half-hours; interval 3 is missing on day two (0 calls).
    (tmp_path / "sales.csv").write_text(
        "interval,calls\n0,18\n1,36\n2,90\n3,54\n0,18\n1,72\n2,90\n"
    )
    sc = load_scenario(write(tmp_path, HISTORY))
    assert sc.arrivals[0].rate == pytest.approx([0.01, 0.03, 0.05, 0.015])
    res = run_scenario(sc)
    assert len(res.intervals) == 4
    assert res.intervals[2]["overall"]["offered"] > res.intervals[0]["overall"]["offered"]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (None, "cannot read"),
        ("when,calls\n0,1\n", "header with `interval` and `calls`"),
        ("interval,calls\n0,ten\n", "line 2: interval and calls must be numbers"),
        ("interval,calls\n0,5\n-1,3\n", "line 3"),
    ],
)
def test_bad_history_is_refused(tmp_path: Path, csv: str | None, message: str) -> None:
    if csv is not None:
        (tmp_path / "sales.csv").write_text(csv)
    with pytest.raises(ScenarioError, match="history_csv") as info:
        load_scenario(write(tmp_path, HISTORY))
    assert message in str(info.value)


def test_rate_or_history_not_both_nor_neither(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("interval,calls\n0,5\n")
    both = HISTORY.replace('history_csv = "sales.csv"', 'history_csv = "sales.csv"\nrate_per_s = 1')
    with pytest.raises(ScenarioError, match="not both"):
        load_scenario(write(tmp_path, both))
    with pytest.raises(ScenarioError, match="give rate_per_s or history_csv"):
        load_scenario(write(tmp_path, HISTORY.replace('history_csv = "sales.csv"\n', "")))


STEPPED = """
seed = 3
calls = 3000
warmup_s = 0

[[queues]]
name = "sales"
service_level = { threshold_s = 9, target = 0.8 }
steps = [ { after_s = 0, require = { sales = 5 } }, { after_s = 10, require = { sales = 1 } } ]

[[agent_groups]]
name = "juniors"
count = 3
skills = { sales = 2 }

[[arrivals]]
queue = "sales"
rate_per_s = 0.01
handle = { dist = "exponential", mean_s = 60 }
"""


@pytest.mark.parametrize("engine", ["fast", "simpy"])
def test_requirement_steps_are_simulated(tmp_path: Path, engine: str) -> None:
    # Only juniors: no call can be answered before its step at 10 s, and with
    # three agents for a load of 0.6 erlang, almost every call is answered then.
    sc = load_scenario(write(tmp_path, STEPPED))
    if engine == "fast":
        res = run_scenario(sc)
    else:
        from agner.sim.simpy_harness import run_scenario_simpy

        res = run_scenario_simpy(sc, calls=600)
    total = res.overall
    assert total["answered"] > 0
    assert total["service_level_answered"] == 0.0  # nobody within 9 s
    assert 10.0 <= total["asa_s"] < 12.0


def test_limits_are_simulated_from_a_scenario(tmp_path: Path) -> None:
    text = STEPPED.replace('name = "sales"\n', 'name = "sales"\nmax_wait_s = 5\n')
    text = text.replace("max_wait_s = 5\n", 'max_wait_s = 5\noverflow = "voicemail"\n')
    res = run_scenario(load_scenario(write(tmp_path, text)))
    # The step at 10 s never comes: every call goes to voicemail at 5 s.
    f = res.overall
    assert f["answered"] == 0
    assert f["voicemail"] == f["offered"] - 1 or f["voicemail"] == f["offered"]


CHAT = BASE.replace("skills = { sales = 3 }", "skills = { sales = 3 }\ncapacity = { chat = 3 }")
CHAT = CHAT.replace('queue = "sales"', 'queue = "sales"\nchannel = "chat"')


def test_multi_channel_agents_are_simulated_from_a_scenario(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, CHAT.replace("rate_per_s = 0.02", "rate_per_s = 0.06")))
    res = run_scenario(sc)
    # 10.8 erlangs of chats on 5 agents: only possible because each holds three.
    assert res.overall["offered"] == 2000
    assert res.overall["answered"] >= 1990  # type: ignore[operator]
    assert res.overall["asa_s"] < 60  # type: ignore[operator]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('channel = "chat"', 'channel = "fax"'), "arrivals[0].channel"),
        (
            ('channel = "chat"', 'channel = "email"'),
            "arrivals[0].channel: no agent group that serves queue 'sales' takes 'email'",
        ),
        (("capacity = { chat = 3 }", "capacity = { chat = 30 }"), "(g).capacity.chat"),
        (("capacity = { chat = 3 }", "capacity = { fax = 3 }"), "(g).capacity.fax"),
        (("capacity = { chat = 3 }", "capacity = { chat = 0 }"), "(g).capacity: at least one"),
        (
            ("capacity = { chat = 3 }", 'capacity = { chat = 3 }\nblocks = { chat = ["fax"] }'),
            "(g).blocks.chat",
        ),
        (
            ("capacity = { chat = 3 }", 'blocks = { chat = ["voice"] }'),
            "(g).blocks: needs capacity",
        ),
    ],
)
def test_channel_nonsense_is_refused_naming_the_field(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    old, new = change
    assert old in CHAT
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, CHAT.replace(old, new, 1)))
    assert field in str(info.value)


def test_a_channel_nobody_takes_after_an_overflow_is_refused(tmp_path: Path) -> None:
    # Chats of "web" overflow after 60 s to "sales", whose only agents are voice-only.
    text = CHAT.replace("capacity = { chat = 3 }", "capacity = { voice = 1 }")
    text = text.replace(
        "[[agent_groups]]",
        '[[queues]]\nname = "web"\nrequire = { web = 1 }\nmax_wait_s = 60\n'
        'overflow = "sales"\n\n'
        '[[agent_groups]]\nname = "chatters"\ncount = 2\nskills = { web = 1 }\n'
        "capacity = { chat = 2 }\n\n[[agent_groups]]",
    )
    text = text.replace('queue = "sales"', 'queue = "web"')
    with pytest.raises(ScenarioError, match="overflow to 'sales'"):
        load_scenario(write(tmp_path, text))
    # Given chat agents in "sales" too, it runs.
    load_scenario(write(tmp_path, text.replace("capacity = { voice = 1 }", "")))
