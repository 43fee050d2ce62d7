"""agner staff: Erlang for single-skill centers, simulation for multi-skill ones."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from agner.cli import main
from agner.sim import erlang
from agner.sim.scenario import load_scenario
from agner.sim.staff import StaffTarget, parse_target, staff_scenario

ROOT = Path(__file__).resolve().parent.parent

MULTI = """
seed = 2
interval_s = 1800
[[queues]]
name = "a"
require = { x = 1 }
[[queues]]
name = "b"
require = { y = 1 }
[[agent_groups]]
name = "xs"
count = 4
skills = { x = 1 }
[[agent_groups]]
name = "both"
count = 2
skills = { x = 1, y = 1 }
[[agent_groups]]
name = "ys"
count = 4
skills = { y = 1 }
[[arrivals]]
queue = "a"
rate_per_s = [0.02, 0.05]
handle = { dist = "exponential", mean_s = 120 }
patience = { dist = "exponential", mean_s = 90 }
[[arrivals]]
queue = "b"
rate_per_s = [0.05, 0.02]
handle = { dist = "exponential", mean_s = 120 }
"""


def test_parse_target() -> None:
    assert parse_target("80/20") == StaffTarget(0.8, 20.0)
    assert parse_target("90/15.5") == StaffTarget(0.9, 15.5)
    for bad in ("80", "80/", "x/20", "100/20", "0/20", "80/-1"):
        with pytest.raises(ValueError, match="target"):
            parse_target(bad)


def test_single_skill_is_erlang() -> None:
    sc = load_scenario(ROOT / "examples" / "mm380.toml")
    out = staff_scenario(sc, StaffTarget(0.8, 20))
    assert out["single_skill"] is True
    (row,) = out["intervals"]
    expected = erlang.staff_erlang_a(360.0, 180.0, 120.0, service_level=0.8, threshold_s=20)
    assert row["agents"] == row["erlang_total"] == expected
    assert row["confirmed_by"] == "erlang" and row["groups"] == {"agents": expected}


def test_multi_skill_is_confirmed_by_simulation(tmp_path: Path) -> None:
    path = tmp_path / "multi.toml"
    path.write_text(MULTI)
    sc = load_scenario(path)
    out = staff_scenario(sc, StaffTarget(0.8, 20), replications=2, calls=4000)
    assert out["single_skill"] is False
    assert [row["start_s"] for row in out["intervals"]] == [0, 1800]
    for row in out["intervals"]:
        assert row["confirmed_by"] == "simulation"
        assert sum(row["groups"].values()) == row["agents"]
        # Sharing agents across queues needs no more than separate Erlang staffing
        # plus a little for the noise of the search; skills cost it nothing here.
        assert 0.7 * row["erlang_total"] <= row["agents"] <= 1.2 * row["erlang_total"] + 2
    assert out == staff_scenario(sc, StaffTarget(0.8, 20), replications=2, calls=4000)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["staff", str(ROOT / "examples" / "mm380.toml"), "--target", "80/20", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["intervals"][0]["agents"] > 300
    assert main(["staff", str(ROOT / "examples" / "mm380.toml"), "--target", "80"]) == 2
    assert "target" in capsys.readouterr().err
    assert main(["staff", str(ROOT / "examples" / "mm380.toml"), "--target", "80/20"]) == 0
    assert "fewest agents for 80% answered within 20 s" in capsys.readouterr().out


def test_staffing_search_on_a_local_dask_cluster(tmp_path: Path, dask_scheduler: str) -> None:
    path = tmp_path / "multi.toml"
    path.write_text(MULTI)
    sc = load_scenario(path)
    here = staff_scenario(sc, StaffTarget(0.8, 20), replications=2, calls=4000, workers=1)
    there = staff_scenario(
        sc, StaffTarget(0.8, 20), replications=2, calls=4000, scheduler=dask_scheduler
    )
    assert here == there


CHATS = """
seed = 5
[[queues]]
name = "chat"
[[agent_groups]]
name = "chat"
count = 1
capacity = { chat = 3 }
[[arrivals]]
queue = "chat"
channel = "chat"
rate_per_s = 0.08
handle = { dist = "exponential", mean_s = 180 }
"""


def test_multi_channel_agents_are_staffed_by_simulation(tmp_path: Path) -> None:
    # 14.4 erlangs of chats: Erlang C wants N servers; agents holding three chats
    # each are N / 3 agents (M/M/3n), not N.
    path = tmp_path / "chat.toml"
    path.write_text(CHATS)
    out = staff_scenario(load_scenario(path), StaffTarget(0.8, 20), replications=3, calls=20_000)
    (row,) = out["intervals"]
    servers = erlang.staff_erlang_c(14.4, 180.0, service_level=0.8, threshold_s=20)
    assert row["erlang_total"] == servers and row["confirmed_by"] == "simulation"
    assert math.ceil(servers / 3) - 1 <= row["agents"] <= math.ceil(servers / 3) + 1
