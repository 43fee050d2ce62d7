"""agner simulate --plot and --report."""

from __future__ import annotations

from pathlib import Path

import pytest

from agner.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("example", "words"),
    [
        ("multiskill.toml", ["sales", "support", "billing", "By interval", "08:00"]),
        ("mm380.toml", ["support", "Occupancy"]),
        ("blended.toml", ["voice", "chat", "blended-morning", "contacts held per agent"]),
    ],
)
def test_plot_and_report(
    tmp_path: Path, example: str, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    png, page = tmp_path / "sl.png", tmp_path / "report.html"
    argv = [
        "simulate",
        str(ROOT / "examples" / example),
        "--calls",
        "20000",
        "--replications",
        "2",
        "--workers",
        "1",
        "--plot",
        str(png),
        "--report",
        str(page),
    ]
    assert main(argv) == 0
    capsys.readouterr()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "</html>" in text
    for word in words:
        assert word in text
    assert "95% confidence half-width" in text


def test_unwritable_outputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "no" / "such" / "dir" / "x.png"
    assert (
        main(
            [
                "simulate",
                str(ROOT / "examples" / "mm380.toml"),
                "--calls",
                "1000",
                "--plot",
                str(bad),
            ]
        )
        == 2
    )
    assert "cannot write" in capsys.readouterr().err
