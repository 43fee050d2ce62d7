"""agner simulate: the scenario examples through the command line."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agner.cli import main
from agner.sim.erlang import erlang_a
from agner.sim.replicate import FIGURES, simulate_replications, t975
from agner.sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
MM380 = str(ROOT / "examples" / "mm380.toml")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["simulate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_one_run_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, MM380, "--calls", "100000")
    assert out["overall"]["offered"] == 100_000 and out["calls"] == 100_000
    for key in FIGURES:
        assert key in out["overall"] and key in out["queues"]["support"]
        assert f"{key}_ci95" not in out["overall"]
    assert out["calls_per_second"] > 0 and out["wall_s"] > 0
    theory = erlang_a(380, 360.0, 180.0, 120.0, 20.0)
    assert out["overall"]["p_abandon"] == pytest.approx(theory.p_abandon, abs=0.003)
    assert out["overall"]["occupancy"] == pytest.approx(theory.occupancy, abs=0.01)


def test_replications_carry_confidence_half_widths(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, MM380, "--calls", "20000", "--replications", "3", "--workers", "2")
    assert out["replications"] == 3 and out["calls"] == 60_000
    o = out["overall"]
    assert o["offered"] == 20_000 and o["offered_ci95"] == 0
    assert o["p_abandon_ci95"] > 0 and o["asa_s_ci95"] > 0


def test_replications_are_the_seeds_run_one_by_one() -> None:
    sc = load_scenario(MM380)
    pooled = simulate_replications(
        sc, replications=3, calls=5000, seed=11, executor=ThreadPoolExecutor(2)
    )
    alone = [simulate_replications(sc, calls=5000, seed=11 + i) for i in range(3)]
    mean_abandoned = sum(a["overall"]["abandoned"] for a in alone) / 3
    assert pooled["overall"]["abandoned"] == pytest.approx(mean_abandoned)


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(ROOT / "examples" / "multiskill.toml"), "--duration", "7200"]) == 0
    out = capsys.readouterr().out
    for word in ("sales", "support", "billing", "overall", "occupancy", "SL/offered"):
        assert word in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["/no/such.toml"], "cannot read"),
        ([MM380, "--calls", "0"], "--calls must be >= 1"),
        ([MM380, "--replications", "0"], "--replications"),
        ([MM380, "--duration", "-5"], "--duration"),
    ],
)
def test_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["simulate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_t_quantiles() -> None:
    assert t975(1) == 12.706 and t975(30) == 2.042
    assert t975(31) == pytest.approx(2.040, abs=1e-3)
    assert t975(1000) == pytest.approx(1.962, abs=1e-3)


def test_replications_on_a_local_dask_cluster(
    capsys: pytest.CaptureFixture[str], dask_scheduler: str
) -> None:
    out = run_json(
        capsys,
        MM380,
        "--calls",
        "5000",
        "--replications",
        "3",
        "--seed",
        "5",
        "--scheduler",
        dask_scheduler,
    )
    # The same seeds give the same figures wherever they run.
    local = run_json(
        capsys, MM380, "--calls", "5000", "--replications", "3", "--seed", "5", "--workers", "1"
    )
    assert out["queues"] == local["queues"]
    assert out["replications"] == 3


def test_unreachable_scheduler_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a free port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        main(
            [
                "simulate",
                MM380,
                "--calls",
                "1000",
                "--replications",
                "2",
                "--scheduler",
                f"tcp://127.0.0.1:{port}",
            ]
        )
        == 2
    )
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_per_call_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    path = tmp_path / "calls.csv"
    out = run_json(capsys, MM380, "--calls", "30000", "--records", str(path))
    rows = list(csv.DictReader(path.open()))
    answered = [r for r in rows if r["outcome"] == "answered"]
    abandoned = [r for r in rows if r["outcome"] == "abandoned"]
    o = out["overall"]
    assert len(abandoned) == o["abandoned"]
    # Answered rows are the completed calls: those still talking at the end have none.
    assert o["answered"] - 380 <= len(answered) <= o["answered"]
    for r in answered[:200]:
        assert float(r["wait_s"]) == pytest.approx(
            float(r["answered_s"]) - float(r["arrival_s"]), abs=2e-6
        )
        assert float(r["talk_s"]) > 0 and r["agent"] != "" and r["queue"] == "support"
    for r in abandoned[:50]:
        assert r["answered_s"] == "" and r["agent"] == "" and float(r["wait_s"]) > 0
    waits = [float(r["wait_s"]) for r in answered]
    assert sum(waits) / len(waits) == pytest.approx(o["asa_s"], rel=0.05)


def test_records_need_one_replication(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert (
        main(
            [
                "simulate",
                MM380,
                "--calls",
                "100",
                "--replications",
                "2",
                "--records",
                str(tmp_path / "x.csv"),
            ]
        )
        == 2
    )
    assert "one replication" in capsys.readouterr().err


def test_scenario_replications_are_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(MM380).read_text().replace("seed = 1\n", "seed = 1\nreplications = 2\n")
    path = tmp_path / "two.toml"
    path.write_text(text)
    assert run_json(capsys, str(path), "--calls", "2000")["replications"] == 2
    assert (
        run_json(capsys, str(path), "--calls", "2000", "--replications", "1")["replications"] == 1
    )


def test_blended_example_through_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blended = str(ROOT / "examples" / "blended.toml")
    out = run_json(capsys, blended, "--replications", "3")
    assert set(out["queues"]) == {"voice", "chat"}
    assert set(out["agent_groups"]) == {"voice", "chat", "blended", "blended-morning"}
    assert all(0 < g["occupancy"] < 1 for g in out["agent_groups"].values())
    groups = out["agent_groups"]
    assert groups["chat"]["multi_channel"] and not groups["voice"]["multi_channel"]
    assert groups["chat"]["contacts_held"] > 2 and "contacts_held_ci95" in groups["chat"]
    assert groups["voice"]["contacts_held"] == pytest.approx(groups["voice"]["occupancy"])
    assert main(["simulate", blended]) == 0
    assert re.search(
        r"contacts held per agent: voice 0\.\d\d, chat [12]\.\d\d", capsys.readouterr().out
    )
    chat = out["queues"]["chat"]
    # 18 erlangs of chat, more than the agents who take chats could hold one at a time.
    assert chat["answered"] > 0.9 * chat["offered"]
    assert main(["simulate", blended, "--engine", "simpy"]) == 0
    assert "blended-morning" in capsys.readouterr().out
    # A channel nobody takes is refused with the field named (exit 2).
    text = Path(blended).read_text().replace('channel = "chat"', 'channel = "email"')
    (tmp_path / "b.toml").write_text(text)
    assert main(["simulate", str(tmp_path / "b.toml")]) == 2
    assert "arrivals[1].channel" in capsys.readouterr().err
