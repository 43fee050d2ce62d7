"""Helpers for the SIP tests: Kamailio with adapters/kamailio.cfg, sipp callers and
agents, on free loopback ports, each in the foreground of a subprocess that the
test stops. Skips when Kamailio or sipp are not installed (.ci/run installs them)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from agner.adapters.kamailio import CONFIG

ROOT = Path(__file__).resolve().parent.parent
SIPP = ROOT / "adapters" / "sipp"
HOST = "127.0.0.1"

needs_sip = pytest.mark.skipif(
    (shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists())
    or shutil.which("sipp") is None,
    reason="kamailio and sipp (Debian: kamailio kamailio-extra-modules sip-tester) are needed",
)

CENTER = """
[server]
fsync = "never"
ring_timeout_s = {ring_timeout_s}

[[tenants]]
name = "acme"
token = "acme-service-token"
queues = ["sales"]
agent_groups = ["ag"]

[[queues]]
name = "sales"
strategy = "{strategy}"
service_level = {{ threshold_s = 20, target = 0.8 }}
{queue_extra}

[[agent_groups]]
name = "ag"
count = {agents}
skills = {{ sales = 1 }}
wrap_up_s = 0
"""


def write_center(
    path: Path,
    agents: int = 3,
    ring_timeout_s: int = 60,
    strategy: str = "linear",
    queue_extra: str = "",
) -> Path:
    """A center of one queue, sales, and ``agents`` agents ag-1.. for tenant acme;
    ``queue_extra``: more lines of the queue (limits, overflow)."""
    path.write_text(
        CENTER.format(
            agents=agents, ring_timeout_s=ring_timeout_s, strategy=strategy, queue_extra=queue_extra
        )
    )
    return path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (as far as one can tell)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind((HOST, port))
        except OSError:
            continue
        return port


def kamailio_bin() -> str:
    return shutil.which("kamailio") or "/usr/sbin/kamailio"


class Kamailio:
    """kamailio -DD -E (foreground, logs to stderr) with its pid and runtime
    files under ``tmp``; SIP on a free UDP port, evapi on a free TCP port."""

    def __init__(
        self,
        tmp: Path,
        *,
        ring_ms: int = 15000,
        max_wait_ms: int = 60000,
        children: int = 4,
        shm_mb: int = 128,
        rcvbuf: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.sip_port = free_port()
        self.evapi_port = free_port(socket.SOCK_STREAM)
        self.log = tmp / "kamailio.log"
        run = tmp / "kamailio-run"
        run.mkdir(exist_ok=True)
        self.cmd = [
            kamailio_bin(),
            "-f",
            str(CONFIG),
            "-DD",
            "-E",
            "-m",
            str(shm_mb),
            "-M",
            "16",
            "-Y",
            str(run),
            "-P",
            str(run / "kamailio.pid"),
            "-w",
            str(run),
            "-l",
            f"udp:{HOST}:{self.sip_port}",
            "-A",
            f'EVAPI_ADDR="{HOST}:{self.evapi_port}"',
            "-A",
            f"RING_MS={ring_ms}",
            "-A",
            f"MAX_WAIT_MS={max_wait_ms}",
            "-A",
            f"CHILDREN={children}",
            "-A",
            f'DIAL_URI="sip:agner-dial@{HOST}:{self.sip_port}"',
        ]
        if rcvbuf is not None:  # the most its UDP receive buffer may grow to (-b)
            self.cmd += ["-b", str(rcvbuf)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def evapi(self) -> str:
        return f"{HOST}:{self.evapi_port}"

    def start(self, timeout: float = 10.0) -> Kamailio:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((HOST, self.evapi_port), 0.2):
                    pass  # evapi listens: the workers are up
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kamailio did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Sipp:
    """One sipp process in the background; every message it sends and receives
    goes to ``messages`` (-trace_msg), parsed by :meth:`seen`."""

    def __init__(
        self, tmp: Path, name: str, scenario: str, *args: str, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.messages = tmp / f"{name}.msg"
        self.errors = tmp / f"{name}.err"
        self.out = tmp / f"{name}.out"
        self.cmd = [
            "sipp",
            "-sf",
            str(SIPP / scenario),
            "-i",
            HOST,
            "-p",
            str(self.port),
            "-trace_msg",
            "-message_file",
            str(self.messages),
            "-trace_err",
            "-error_file",
            str(self.errors),
            "-nostdin",
            *args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Sipp:
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TERM": "dumb"},
                cwd=self.messages.parent,  # where -trace_stat and -trace_rtt write
            )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # sipp: stop and write its files
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def seen(self) -> dict[str, list[str]]:
        """Call-ID -> the first lines (request methods and response codes) this
        sipp sent or received, in order; retransmissions included."""
        calls: dict[str, list[str]] = defaultdict(list)
        if not self.messages.exists():
            return calls
        text = self.messages.read_text(errors="replace")
        for block in re.split(r"\n-{5,}[^\n]*\n", text):
            lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
            first = next(
                (ln for ln in lines if re.match(r"^(SIP/2\.0 \d{3}|[A-Z]+ sip:)", ln)), None
            )
            cid = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in lines
                    if ln.lower().startswith(("call-id:", "i:"))
                ),
                None,
            )
            if first is None or cid is None:
                continue
            calls[cid].append(first.split()[1] if first.startswith("SIP/2.0") else first.split()[0])
        return calls
