"""`agner load` against a live server, and `agner serve`'s refusals on the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serve_harness import ACME, CENTER, GLOBEX, ServerProcess

from agner.cli import main


def test_load_drives_the_server_and_leaves_it_as_found(tmp_path: Path) -> None:
    srv = ServerProcess(CENTER, tmp_path).start()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "agner.cli",
                "load",
                str(CENTER),
                "--server",
                srv.tcp,
                "--rate",
                "150",
                "--duration",
                "1.5",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert res["errors"] == 0 and res["agents"] == 102
        assert res["arrivals"] > 100 and res["assigned"] == res["arrivals"]
        assert 0 < res["p50_ms"] <= res["p99_ms"] <= res["max_ms"]
        assert res["events"] >= 2 * res["assigned"] and res["events_per_second"] > 0
        for token in (ACME, GLOBEX):
            _, queues = srv.get("/v1/queues", token)
            assert all(q["waiting"] == 0 for q in queues["queues"])
            assert sum(q["offered"] for q in queues["queues"]) > 0
            _, agents = srv.get("/v1/agents", token)
            assert {a["state"] for a in agents["agents"]} == {"logged_out"}
        _, health = srv.get("/healthz")
        assert health["inputs"] >= res["events"]
    finally:
        assert srv.stop() == 0


def test_load_without_a_server_says_so(capsys: object) -> None:
    assert main(["load", str(CENTER), "--server", "127.0.0.1:1", "--duration", "1"]) == 2


def test_serve_refuses_a_bad_config(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CENTER.read_text().replace('queues = ["billing"]', 'queues = ["sales"]'))
    assert main(["serve", str(bad), "--tcp", "127.0.0.1:0"]) == 2
    assert main(["serve", str(CENTER), "--tcp", "nowhere"]) == 2


def test_journal_of_another_configuration_is_refused(tmp_path: Path) -> None:
    srv = ServerProcess(CENTER, tmp_path).start()
    srv.stop()
    other = tmp_path / "other.toml"
    other.write_text(CENTER.read_text().replace("count = 40", "count = 41", 1))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agner.cli",
            "serve",
            str(other),
            "--tcp",
            "127.0.0.1:0",
            "--data",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "another configuration" in out.stderr
