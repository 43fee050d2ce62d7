"""The command line: the demo of the README and the router benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agner.cli import main
from agner.sim.routerbench import Workload, build_center, build_router, drive_python, load_reference

ROOT = Path(__file__).resolve().parent.parent


def test_demo_prints_every_queue_and_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for name in ("sales", "support", "billing", "ventas", "bilingual", "occupancy", "ASA s"):
        assert name in out


def test_demo_json_adds_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json", "--hours", "0.5", "--seed", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["duration_s"] == 1800
    for q in out["queues"].values():
        # Every contact offered is answered, abandoned, or still in the router.
        assert q["answered"] + q["abandoned"] + q["waiting"] <= q["offered"]
        assert q["offered"] - q["answered"] - q["abandoned"] - q["waiting"] <= 56
        assert 0 <= q["service_level_offered"] <= q["service_level_answered"] <= 1
    assert sum(out["agents_by_state"].values()) == 56


def test_demo_is_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    main(["demo", "--json", "--seed", "11"])
    first = capsys.readouterr().out
    main(["demo", "--json", "--seed", "11"])
    assert capsys.readouterr().out == first


def test_demo_refuses_bad_hours(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--hours", "0"]) == 2
    assert "--hours" in capsys.readouterr().err


def test_bench_router_json_has_the_promised_keys(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "bench",
        "router",
        "--agents",
        "300",
        "--arrivals",
        "20000",
        "--python-arrivals",
        "3000",
        "--reference-arrivals",
        "600",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("events_per_second", "ns_per_event"):
        assert out[key] > 0
        assert out["python"][key] > 0
        assert out["reference"][key] > 0
    assert out["agree"] is True
    assert out["agents"] == 300 and out["queues"] == 200 and out["skills"] == 50
    assert out["config"] == "basic"
    assert out["load"] == 0.95 and 0.5 < out["occupancy"] < 1


def test_bench_router_takes_a_load(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "router", "--agents", "300", "--arrivals", "20000", "--no-reference"]
    assert main([*args, "--python-arrivals", "2000", "--config", "extended", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["load"] == 1.2
    assert main([*args, "--python-arrivals", "2000", "--load", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["load"] == 0.5 and out["occupancy"] < 0.6
    for bad in ("0", "-1", "nan", "101"):
        assert main([*args, "--load", bad]) == 2
        assert "--load" in capsys.readouterr().err


def test_both_configurations_keep_their_agents_equally_busy() -> None:
    # The extended configuration's multi-channel agents hold several contacts
    # at once: at the basic configuration's arrival rate its agents would idle
    # far more, and the two would compare different centers. Its default load
    # brings it to the basic one's occupancy (sim/routerbench.py).
    from agner.sim.routerbench import arrival_channels, arrival_queues, time_c_level

    def occupancy(w: Workload) -> float:
        center = build_center(w)
        n = int(60 * w.agents * w.arrival_load)  # 60 handle times
        queues = arrival_queues(w, center, n)
        return time_c_level(w, center, queues, arrival_channels(w, n, queues))[2]

    basic = occupancy(Workload(agents=1000))
    assert 0.92 < basic < 0.97
    assert abs(occupancy(Workload(agents=1000, extended=True)) - basic) < 0.02
    assert occupancy(Workload(agents=1000, extended=True, load=0.95)) < basic - 0.08


def test_bench_router_refuses_bad_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "router", "--agents", "0"]) == 2
    assert main(["bench", "router", "--agents", "10", "--arrivals", "0"]) == 2


def test_interleaved_centers_decide_as_each_would_alone() -> None:
    # core/workload.pyx run_many (bench/interleaved_centers.py): centers of
    # different sizes, their events interleaved at random, each make the
    # decisions (events, offers, checksum) it makes when run alone.
    from agner import Router
    from agner.core.workload import run as run_c
    from agner.core.workload import run_many
    from agner.sim.routerbench import arrival_queues

    works = [Workload(agents=n, seed=3 + n, load=1.05) for n in (40, 90, 60)]
    w = works[0]
    # One timing for all (run_many takes one): each center's own load differs.
    timing = w.driver_args
    queues, alone, routers = [], [], []
    for k, x in enumerate(works):
        center = build_center(x)
        queues.append(arrival_queues(x, center, 1500 + 500 * k))
        alone.append(run_c(build_router(Router, x, center), queues[-1], *timing))
        routers.append(build_router(Router, x, center))
    assert run_many(routers, queues, *timing) == alone
    for (events, offers, _), q in zip(alone, queues, strict=True):
        assert events > 3 * len(q) and offers > 0
    with pytest.raises(ValueError, match="one arrival list per router"):
        run_many(routers, queues[:2], *timing)


@pytest.mark.parametrize("extended", [False, True])
def test_the_three_drivers_agree_on_a_busy_center(extended: bool) -> None:
    # The benchmark's own cross-check, at a size where RONA, abandons and
    # wrap-ups all happen: C-level driver, Python API and reference alike; and in
    # the extended configuration (steps, aging, parallel offers) too.
    from agner import Router
    from agner.core.workload import run as run_c
    from agner.sim.routerbench import arrival_chains, arrival_channels, arrival_queues

    w = Workload(agents=120, seed=5, load=1.05, extended=extended)
    center = build_center(w)
    queues = arrival_queues(w, center, 4000)
    channels = arrival_channels(w, 4000, queues)
    assert (channels > 0).any() == extended
    r = build_router(Router, w, center)
    c_out = run_c(
        r, queues, *w.driver_args, arrival_chains(r, queues, channels) if extended else None
    )
    py_out = drive_python(build_router(Router, w, center), queues.tolist(), w, channels.tolist())
    ref = load_reference()
    assert ref is not None
    ref_out = drive_python(build_router(ref, w, center), queues.tolist(), w, channels.tolist())
    assert c_out == py_out == ref_out
    assert c_out[1] > 3000  # offers: the run did route


def test_agner_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agner.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout and "bench" in out.stdout


def test_examples_run() -> None:
    for example in sorted((ROOT / "examples").glob("*.py")):
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True)
        assert done.returncode == 0, f"{example.name}: {done.stderr}"
        assert done.stdout.strip(), example.name


def test_readme_python_snippets_run() -> None:
    # The README shows code; it must be code that works.
    text = (ROOT / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    shell = [b.split("```", 1)[0].strip() for b in text.split("```sh\n")[1:3]]
    install, main_job = shell[0].split(" && ", 1)
    assert install == "python -m pip install ."
    assert "agner serve examples/center.toml" in main_job and "agner load" in main_job
    assert shell[1] == 'python -m pip install -e ".[test]" && python -m pytest -q'
    assert shell[1] in (ROOT / ".ci" / "run").read_text()


def test_the_readme_main_job_routes_a_load() -> None:
    # The README's main job as written (the package is installed already), on
    # free ports instead of the defaults: the server starts, the load is routed
    # with no refusal, and the server is stopped.
    import socket

    text = (ROOT / "README.md").read_text()
    main_job = text.split("```sh\n")[1].split("```", 1)[0].strip().split(" && ", 1)[1]
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    job = main_job.replace(
        "agner serve examples/center.toml",
        f"agner serve examples/center.toml --tcp 127.0.0.1:{ports[0]} --http 127.0.0.1:{ports[1]}",
    ).replace("127.0.0.1:7100", f"127.0.0.1:{ports[0]}")
    # `agner` is the installed script; this interpreter's module stands for it,
    # whatever PATH the tests run with.
    job = job.replace("agner ", f"{sys.executable} -m agner.cli ")
    done = subprocess.run(
        ["bash", "-c", job], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agner load:" in done.stdout and " 0 errors" in done.stdout
