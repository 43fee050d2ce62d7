"""Helpers for the server tests: a server subprocess on 127.0.0.1 and small clients."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CENTER = ROOT / "examples" / "center.toml"
ACME = "acme-service-token"
GLOBEX = "globex-service-token"
ANN = "ann-desktop-token"


def center_with(directory: Path, **server: Any) -> Path:
    """A copy of examples/center.toml in `directory` with `server` options set
    in its ``[server]`` table (say, ``snapshot_every=50``)."""
    text = CENTER.read_text()
    for k, v in server.items():
        line = f"{k} = {json.dumps(v)}"
        if re.search(rf"^{k} *=", text, flags=re.M):  # set in the example already
            text = re.sub(rf"^{k} *=.*$", line, text, count=1, flags=re.M)
        else:
            text = text.replace("[server]\n", f"[server]\n{line}\n", 1)
    path = directory / "center.toml"
    path.write_text(text)
    return path


class ServerProcess:
    """`agner serve CONFIG` on ephemeral ports of 127.0.0.1, in a subprocess."""

    def __init__(self, config: Path, data: Path) -> None:
        self.config = config
        self.data = data
        self.proc: subprocess.Popen[str] | None = None
        self.tcp = ""
        self.http = ""

    def start(self, timeout: float = 20.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "agner.cli", "serve", str(self.config)]
        cmd += ["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", str(self.data)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy()
        )
        assert self.proc.stdout is not None
        # Lines come through a reader thread: select() on the pipe cannot see a
        # line already read into the file's buffer (the banner's lines often
        # arrive in one write), which made a healthy start look stalled.
        lines: queue.Queue[str] = queue.Queue()
        out = self.proc.stdout

        def pump() -> None:
            for text in out:
                lines.put(text)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        self.banner = ""
        while not (self.tcp and self.http):
            # never block past the deadline on a server that prints nothing
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if not line or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"the server did not start: {self.banner}{line}")
            self.banner += line
            if line.startswith("tcp "):
                self.tcp = line.split()[1]
            elif line.startswith("http "):
                self.http = line.split()[1]
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://{self.http}{path}")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read()
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        return status, json.loads(body) if "json" in ctype else body.decode()
