"""agner report and agner crm import|lookup, on both backends."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agner.cli import main
from agner.crm import Interaction, open_store

pytest_plugins = ["_pg"]

S = 1_000_000
B = 944_444 * 1800 * S  # 2023-11-14T22:00:00Z


def test_import_then_lookup(store_url: str, tmp_path: Path, capsys: Any) -> None:
    p = tmp_path / "c.csv"
    p.write_text("name,phone,email,tier,language,account\nAnn,01 42 68 53 00,,gold,fr,A1\n")
    args = ["--store", store_url, "--tenant", "acme"]
    assert main(["crm", "import", str(p), *args, "--region", "FR", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "rows": 1,
        "created": 1,
        "updated": 0,
        "leads_converted": 0,
    }
    assert main(["crm", "lookup", "+33 1 42 68 53 00", *args, "--json"]) == 0
    hints = json.loads(capsys.readouterr().out)
    assert hints["known"] is True and hints["priority"] == 2
    assert hints["language_skill"] == "lang_fr" and hints["preferred_agents"] == []
    assert main(["crm", "lookup", "+33142685300", *args]) == 0
    assert "tier gold (priority 2)" in capsys.readouterr().out
    assert main(["crm", "lookup", "+33142685300", "--store", store_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["known"] is False  # tenant "default"


def test_bad_import_exits_2_naming_the_row(store_url: str, tmp_path: Path, capsys: Any) -> None:
    p = tmp_path / "c.csv"
    p.write_text("name,phone\nAnn,+33142685300\nBob,+33 1 23\n")
    assert main(["crm", "import", str(p), "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agner crm import: ") and "row 2 (line 3), field 'phone'" in err
    with open_store(store_url) as s:
        assert s.count("default", "customers") == 0


def test_report_csv_and_json(store_url: str, tmp_path: Path, capsys: Any) -> None:
    with open_store(store_url) as s:
        s.record_interactions(
            "default",
            [
                Interaction(
                    arrived_us=B + k * 60 * S,
                    answered_us=B + k * 60 * S + 10 * k * S,
                    ended_us=B + k * 60 * S + 100 * S,
                    outcome="answered",
                    queue="sales",
                    agent="ann",
                )
                for k in range(4)
            ],
        )
    out = tmp_path / "r.csv"
    assert main(["report", "--store", store_url, "--interval", "30m", "--csv", str(out)]) == 0
    table = capsys.readouterr().out
    assert "SL 20s/off" in table and "2023-11-14 22:00" in table
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["scope"] for r in rows] == ["all", "queue", "agent"]
    assert rows[1]["name"] == "sales" and rows[1]["offered"] == "4"
    assert rows[1]["service_level_offered"] == "0.7500"  # waits 0, 10, 20 within; 30 not
    assert rows[1]["asa_s"] == "15.0000"
    assert main(["report", "--store", store_url, "--interval", "1h", "--no-agents", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["interval_s"] == 3600 and [r["scope"] for r in rep["rows"]] == ["all", "queue"]
    window = ["--from", "2023-11-14T22:01:00", "--to", "2023-11-14T22:03:00+00:00"]
    assert main(["report", "--store", store_url, "--json", *window]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["offered"] == 2


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--interval", "7m"], "must divide a day"),
        (["--interval", "half an hour"], "--interval"),
        (["--from", "yesterday"], "--from"),
        (["--store", "mysql://x/y"], "store URL"),
    ],
)
def test_report_usage_errors_exit_2(
    tmp_path: Path, capsys: Any, argv: list[str], words: str
) -> None:
    base = ["report", "--store", f"sqlite:///{tmp_path}/crm.db"]
    assert main(base + argv) == 2  # the last --store wins
    assert words in capsys.readouterr().err


def test_unreachable_store_exits_1(capsys: Any) -> None:
    # Port 1 on this machine's loopback: nothing listens there.
    assert main(["crm", "lookup", "+33142685300", "--store", "postgresql://x@127.0.0.1:1/x"]) == 1
    assert capsys.readouterr().err.startswith("agner crm lookup: ")


def test_default_store_is_a_file_in_the_working_directory(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text("name,email\nAnn,ann@example.com\n")
    env = {k: v for k, v in os.environ.items() if k != "AGNER_CRM_STORE"}
    cmd = [sys.executable, "-m", "agner.cli", "crm", "import", str(p)]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "agner-crm.db").exists()
    with open_store(f"sqlite:///{tmp_path}/agner-crm.db") as s:
        assert s.find_customer("default", "ann@example.com") is not None


def test_readme_commands_on_the_example_file(tmp_path: Path, capsys: Any) -> None:
    example = Path(__file__).parent.parent / "examples" / "customers.csv"
    store = f"sqlite:///{tmp_path}/crm.db"
    assert main(["crm", "import", str(example), "--store", store, "--region", "GB"]) == 0
    assert capsys.readouterr().out.startswith("4 rows: 4 customers created")
    assert main(["crm", "lookup", "+44 20 7946 0018", "--store", store, "--json"]) == 0
    hints = json.loads(capsys.readouterr().out)
    assert (hints["known"], hints["tier"], hints["language_skill"]) == (True, "gold", "lang_en")
    with open_store(store) as s:
        chloe = s.find_customer("default", "+33612345678")
        assert chloe is not None and chloe.phones == ("+33142685300", "+33612345678")
        assert chloe.attributes == {"account": "A-1003", "segment": "enterprise"}
    day = tmp_path / "day.csv"
    assert main(["report", "--store", store, "--interval", "30m", "--csv", str(day)]) == 0
    assert day.read_text().startswith("interval_start,scope,name,offered")
