"""`agner adapter kamailio|freeswitch|asterisk`: bad command lines are refused
with a clear message; each adapter, run as a subprocess against its test rig
(Kamailio and sipp; the fake event socket and AMI servers), relays a call to
agner and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from serve_harness import ACME, CENTER, ServerProcess
from sip_harness import HOST, Kamailio, Sipp, needs_sip, write_center
from test_adapter_switches import FakeAsterisk, FakeFreeSwitch, agents, until

from agner.adapters.link import AgnerLink
from agner.cli import main
from agner.protocol import Dial

KAM = ["kamailio", "--evapi", "127.0.0.1:8448", "--server", "127.0.0.1:7100"]
FS = ["freeswitch", "--server", "127.0.0.1:7100", "--password", "x", "--agent", "a=user/1"]
AMI = ["asterisk", "--server", "127.0.0.1:7100", "--username", "u", "--secret", "s"]
AMI += ["--agent", "a=PJSIP/1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["kamailio", "--evapi", "nowhere", "--server", "127.0.0.1:7100", "--agent", "a=b"],
            "--evapi: not a HOST:PORT address: 'nowhere'",
        ),
        (KAM, "give the agents' SIP addresses: --agent NAME=URI or --agent-uri"),
        ([*KAM, "--agent", "ann"], "--agent: expected NAME=ADDRESS, got 'ann'"),
        ([*KAM, "--agent-uri", "sip:ann@h"], "--agent-uri: no {agent} in 'sip:ann@h'"),
        ([*KAM, "--agent", "a=sip:a@h", "--dial-uri", "sip:gw"], "--dial-uri: no {number}"),
        ([*KAM, "--agent", "a=sip:a@h", "--ring-ms", "0"], "--ring-ms must be > 0"),
        (
            ["kamailio", "--evapi", "127.0.0.1:8448", "--server", "7100", "--agent", "a=sip:a@h"],
            "--server: not a HOST:PORT address: '7100'",
        ),
        (
            ["freeswitch", "--server", "127.0.0.1:7100", "--password", "x"],
            "give each agent's dial string: --agent NAME=DIAL (at least one)",
        ),
        (
            ["freeswitch", "--server", "127.0.0.1:7100", "--agent", "a=user/1001"],
            "--password (or the environment variable AGNER_ESL_PASSWORD) is required",
        ),
        (
            ["asterisk", "--server", "127.0.0.1:7100", "--username", "u", "--agent", "a=PJSIP/1"],
            "--secret (or the environment variable AGNER_AMI_SECRET) is required",
        ),
        ([*FS, "--dial", "sofia/gateway/gw"], "--dial: no {number} in 'sofia/gateway/gw'"),
        (
            [*FS, "--dial", "sofia/gateway/gw/{number} &park"],
            "--dial: a dial string has no spaces or line breaks",
        ),
        ([*FS, "--dial", "user/{number}", "--ring-s", "0"], "--ring-s must be > 0"),
        ([*AMI, "--dial", "PJSIP/trunk"], "--dial: no {number} in 'PJSIP/trunk'"),
        ([*AMI, "--ring-s", "-5"], "--ring-s must be > 0"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("AGNER_ESL_PASSWORD", "AGNER_AMI_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AGNER_TOKEN", "t")
    assert main(["adapter", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"agner adapter {argv[0]}: ") and message in err, err


@pytest.mark.parametrize(
    ("switch", "example"),
    [("freeswitch", "sofia/gateway/gw/{number}"), ("asterisk", "PJSIP/{number}@trunk")],
)
def test_dial_options_are_in_the_help(
    switch: str,
    example: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    with pytest.raises(SystemExit) as exc:
        main(["adapter", switch, "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--dial TEMPLATE the customer's dial string for callbacks and click-to-dial" in out
    assert example in out and "--ring-s S how long the switch rings" in out
    assert "default 20" in out


def test_missing_token_and_missing_options_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AGNER_TOKEN", raising=False)
    assert main(["adapter", *KAM, "--agent", "a=sip:a@h"]) == 2
    err = capsys.readouterr().err
    assert "--token (or the environment variable AGNER_TOKEN) is required" in err
    with pytest.raises(SystemExit) as exc:
        main(["adapter", "kamailio", "--server", "127.0.0.1:7100"])
    assert exc.value.code == 2
    assert "the following arguments are required: --evapi" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["adapter", "asterisk", "--server", "127.0.0.1:7100"])
    assert "--username" in capsys.readouterr().err


class AdapterProcess:
    """`python -m agner.cli adapter ...` with the token in the environment;
    its one stdout line (the banner) read through a thread."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.err = tmp / "adapter.err"
        env = {**os.environ, "AGNER_TOKEN": ACME}
        with open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agner.cli", "adapter", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        out = self.proc.stdout
        assert out is not None

        def pump() -> None:
            for line in out:
                self.lines.put(line)

        threading.Thread(target=pump, daemon=True).start()

    def banner(self, timeout: float = 20.0) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no banner: {self.err.read_text()[-2000:]}") from None

    def terminate(self, timeout: float = 10.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@needs_sip
def test_kamailio_command_relays_calls_and_exits_on_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(write_center(tmp_path / "center.toml", 1), tmp_path).start()
    kam = Kamailio(tmp_path).start()
    ann = Sipp(tmp_path, "ann", "agent_answer.xml", f"{HOST}:{kam.sip_port}").start()
    caller = Sipp(
        tmp_path, "caller", "caller.xml", "-s", "sales", f"{HOST}:{kam.sip_port}",
        "-m", "2", "-r", "5", "-d", "100",
    )  # fmt: skip
    adapter = AdapterProcess(
        tmp_path, "kamailio", "--evapi", kam.evapi, "--server", server.tcp,
        "--agent", f"ag-1=sip:ag-1@{HOST}:{ann.port}", "--login", "ag-1", "--ring-ms", "5000",
    )  # fmt: skip
    try:
        banner = adapter.banner()
        assert banner == f"agner adapter kamailio: evapi {kam.evapi}, agner {server.tcp}\n"
        deadline = time.monotonic() + 10
        while agents(server).get("ag-1") != "ready":
            assert time.monotonic() < deadline, adapter.err.read_text()
            time.sleep(0.05)
        caller.start()
        assert caller.wait(20) == 0
        calls = caller.seen()
        assert len(calls) == 2 and all("200" in seen for seen in calls.values())
        assert set(ann.seen()) == set(calls)
        assert adapter.terminate() == 0
        log = adapter.err.read_text()
        assert "evapi up" in log and "agner link up" in log and "Traceback" not in log
    finally:
        adapter.kill()
        for s in (caller, ann):
            s.stop()
        kam.stop()
        server.stop()


async def _stop(proc: AdapterProcess) -> int:
    proc.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while proc.proc.poll() is None:
        assert time.monotonic() < deadline, "the adapter did not exit on SIGTERM"
        await asyncio.sleep(0.05)
    return proc.proc.returncode


def test_freeswitch_and_asterisk_commands_relay_a_call_and_exit_on_sigterm(
    tmp_path: Path,
) -> None:
    """One after the other: agner sends connect to every switch session of the
    tenant, and an adapter ends a call it does not hold. Each places a
    click-to-dial with its --dial template and --ring-s."""
    server = ServerProcess(write_center(tmp_path / "center.toml", 2), tmp_path).start()
    try:

        async def main_() -> None:
            # a CRM's click-to-dial comes from another session of the tenant
            crm = AgnerLink(server.tcp, ACME, lambda msg: None)
            crm.start()
            await crm.wait_up()
            fs = FakeFreeSwitch()
            fs_port = await fs.start()
            fs_adapter = AdapterProcess(
                tmp_path, "freeswitch", "--esl", f"127.0.0.1:{fs_port}", "--password", "ClueCon",
                "--server", server.tcp, "--agent", "ag-1=user/ann", "--login", "ag-1",
                "--dial", "sofia/gateway/gw/{number}", "--ring-s", "7",
            )  # fmt: skip
            try:
                assert fs_adapter.banner().startswith("agner adapter freeswitch: esl 127.0.0.1:")
                await until(lambda: fs.connections == 1 and agents(server)["ag-1"] == "ready", 20)
                await fs.park("f1", "sales", "555")
                await until(lambda: agents(server)["ag-1"] == "busy")
                assert any(c.startswith("sendmsg f1") and "user/ann" in c for c in fs.commands)
                await fs.hangup("f1")
                await until(lambda: agents(server)["ag-1"] == "ready")
                crm.send(Dial("sales", "5550100", call_id="out-1", agent="ag-1"))
                await until(lambda: bool(fs.originated) and agents(server)["ag-1"] == "busy")
                (o,) = fs.originated
                assert (o["dial"], o["customer"]) == ("user/ann", "sofia/gateway/gw/5550100")
                assert o["originate_timeout"] == "7" and o["agner_call_id"] == "out-1"
                assert await _stop(fs_adapter) == 0
            finally:
                fs_adapter.kill()
                assert fs.server is not None
                fs.server.close()
            ami = FakeAsterisk()
            ami_port = await ami.start()
            ami_adapter = AdapterProcess(
                tmp_path, "asterisk", "--ami", f"127.0.0.1:{ami_port}", "--username", "agner",
                "--secret", "s3cret", "--server", server.tcp,
                "--agent", "ag-2=PJSIP/ann", "--login", "ag-2", "--dial", "PJSIP/{number}@trunk",
            )  # fmt: skip
            try:
                assert ami_adapter.banner().startswith("agner adapter asterisk: ami 127.0.0.1:")
                await until(lambda: ami.connections == 1 and agents(server)["ag-2"] == "ready", 20)
                await ami.arrive("a1", "sales", "556")
                await until(lambda: agents(server)["ag-2"] == "busy")
                dials = [a["Value"] for a in ami.actions if a["Action"] == "Setvar"]
                assert dials == ["PJSIP/ann"]
                await ami.hangup("a1")
                await until(lambda: agents(server)["ag-2"] == "ready")
                crm.send(Dial("sales", "5550101", call_id="out-2", agent="ag-2"))
                await until(lambda: agents(server)["ag-2"] == "busy")
                (o,) = [a for a in ami.actions if a["Action"] == "Originate"]
                assert (o["Channel"], o["Data"], o["Timeout"]) == (
                    "PJSIP/ann", "PJSIP/5550101@trunk,20", "20000",
                )  # fmt: skip
                assert await _stop(ami_adapter) == 0
            finally:
                ami_adapter.kill()
                assert ami.server is not None
                ami.server.close()
            await crm.close()

        asyncio.run(main_())
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'evapi = "127.0.0.1:8448"\ntoken = "ann-desktop-token"\nagent_uri = "sip:{agent}@h"',
            "adapters[0].token: not the service token of any tenant",
        ),
        (
            'evapi = "8448"\ntoken = "acme-service-token"\nagent_uri = "sip:{agent}@h"',
            "adapters[0].evapi: not a HOST:PORT address: '8448'",
        ),
        (
            'evapi = "127.0.0.1:8448"\ntoken = "acme-service-token"',
            "adapters[0].give the agents' SIP addresses: agents or agent_uri",
        ),
        (
            'evapi = "127.0.0.1:8448"\ntoken = "acme-service-token"\nagent_uri = "sip:a@h"',
            "adapters[0].agent_uri: no {agent} in 'sip:a@h'",
        ),
        (
            'evapi = "127.0.0.1:8448"\ntoken = "acme-service-token"\nagents = { a = "sip:a@h" }\n'
            "ring_ms = 0",
            "adapters[0].ring_ms must be > 0",
        ),
        (
            'evapi = "127.0.0.1:8448"\ntoken = "acme-service-token"\nagents = { a = "sip:a@h" }\n'
            'esl = "127.0.0.1:8021"',
            "unknown field `esl`",
        ),
    ],
)
def test_serve_refuses_a_bad_adapters_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, message: str
) -> None:
    cfg = tmp_path / "center.toml"
    cfg.write_text(CENTER.read_text() + f'\n[[adapters]]\nswitch = "kamailio"\n{table}\n')
    assert main(["serve", str(cfg), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agner serve: ") and message in err, err
