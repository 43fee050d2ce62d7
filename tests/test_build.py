"""setup.py explains what is missing instead of failing with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_missing_cython_is_named() -> None:
    hide_cython = (
        "import sys; sys.modules['Cython'] = None; sys.modules['Cython.Build'] = None; "
        "sys.argv = ['setup.py', '--version']; exec(open('setup.py').read())"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_cython], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "Cython 3 is needed" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_compiler_is_named(tmp_path: Path) -> None:
    env = dict(os.environ, CC=str(tmp_path / "no-such-cc"))
    done = subprocess.run(
        [
            sys.executable,
            "setup.py",
            "-q",
            "build_ext",
            "--build-temp",
            str(tmp_path / "t"),
            "--build-lib",
            str(tmp_path / "lib"),
            "--force",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0
    assert "A C compiler and the Python headers are needed" in done.stderr
    assert "apt-get install build-essential" in done.stderr
