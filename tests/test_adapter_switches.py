"""The FreeSWITCH (event socket) and Asterisk (AMI) adapters against fake
servers that speak the documented wire formats, with `agner serve` behind:
partial frames, URL-encoded event bodies, events between a command and its
reply, malformed input, and a disconnect with calls changing meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from serve_harness import ACME, ServerProcess
from sip_harness import write_center

from agner.adapters.asterisk import AsteriskAdapter
from agner.adapters.freeswitch import FreeSwitchAdapter
from agner.adapters.link import Backoff
from agner.protocol import Dial


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def dribble(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write in small pieces, so the reader sees partial frames."""
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)


def agents(server: ServerProcess) -> dict[str, str]:
    status, body = server.get("/v1/agents", ACME)
    assert status == 200
    return {a["name"]: a["state"] for a in body["agents"]}


def queue_waiting(server: ServerProcess) -> list[str]:
    status, body = server.get("/v1/queues", ACME)
    assert status == 200
    return list(body["queues"][0]["waiting_calls"])


# ---------------------------------------------------------------- FreeSWITCH


class FakeFreeSwitch:
    """mod_event_socket, inbound: auth/request, command/reply, api/response,
    text/event-plain with URL-encoded bodies. Busy agents' bridges complete at
    once; others are bridged (answered)."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, str]] = {}  # uuid -> {app, queue, cid}
        self.commands: list[str] = []
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def event(self, name: str, uuid: str, **extra: str) -> None:
        fields = {"Event-Name": name, "Unique-ID": uuid, **extra}
        body = "".join(f"{k}: {quote(v)}\n" for k, v in fields.items()) + "\n"
        await self.raw(
            f"Content-Length: {len(body)}\nContent-Type: text/event-plain\n\n{body}".encode()
        )

    async def raw(self, data: bytes) -> None:
        assert self.writer is not None
        await dribble(self.writer, data)

    async def reply(self, text: str) -> None:
        await self.raw(f"Content-Type: command/reply\nReply-Text: {text}\n\n".encode())

    async def api(self, body: str) -> None:
        data = body.encode()
        await self.raw(b"Content-Type: api/response\nContent-Length: %d\n\n%s" % (len(data), data))

    async def park(self, uuid: str, queue: str, cid: str) -> None:
        self.channels[uuid] = {"app": "park", "queue": queue, "cid": cid}
        await self.event(
            "CHANNEL_PARK",
            uuid,
            variable_agner_queue=queue,
            **{"Caller-Caller-ID-Number": cid, "Caller-Destination-Number": "800 sales"},
        )

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connections += 1
        writer.write(b"Content-Type: auth/request\n\n")
        try:
            while True:
                cmd = (await reader.readuntil(b"\n\n")).decode()[:-2]
                self.commands.append(cmd)
                await self._command(cmd)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def _command(self, cmd: str) -> None:
        first = cmd.split("\n")[0]
        if first.startswith("auth "):
            await self.reply("+OK accepted" if first == "auth ClueCon" else "-ERR invalid")
        elif first.startswith("event plain"):
            # an event between the command and its reply, and one with no Unique-ID
            await self.event("HEARTBEAT", "")
            for uuid, ch in list(self.channels.items()):
                if ch.get("new"):
                    del ch["new"]
                    await self.park(uuid, ch["queue"], ch["cid"])
            await self.reply("+OK event listener enabled plain")
        elif first == "api show channels as json":
            rows = [
                {"uuid": u, "application": c["app"], "cid_num": c["cid"], "dest": "800"}
                for u, c in self.channels.items()
            ]
            await self.api(json.dumps({"row_count": len(rows), "rows": rows}))
        elif first.startswith("api uuid_getvar "):
            uuid = first.split()[2]
            await self.api(self.channels.get(uuid, {}).get("queue", "_undef_"))
        elif first.startswith("api uuid_kill "):
            uuid = first.split()[2]
            await self.api("+OK" if self.channels.pop(uuid, None) else "-ERR No such channel!")
            await self.event("CHANNEL_HANGUP_COMPLETE", uuid)
        elif first.startswith("sendmsg "):
            uuid = first.split()[1]
            dial = cmd.split("execute-app-arg: ")[1].split("\n")[0]
            await self.reply("+OK")
            if dial == "user/busy":
                await self.event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge")
            else:
                self.channels[uuid]["app"] = "bridge"
                await self.event("CHANNEL_BRIDGE", uuid)
        else:
            await self.reply("-ERR command not found")

    def drop(self) -> None:
        assert self.writer is not None
        self.writer.close()


def test_freeswitch_adapter(tmp_path: Path) -> None:
    server = ServerProcess(write_center(tmp_path / "center.toml", 3), tmp_path).start()
    try:

        async def main() -> None:
            fs = FakeFreeSwitch()
            port = await fs.start()
            adapter = FreeSwitchAdapter(
                esl=f"127.0.0.1:{port}",
                password="ClueCon",
                server=server.tcp,
                token=ACME,
                agents={"ag-1": "user/busy", "ag-2": "user/ann"},
                login=["ag-1", "ag-2"],
                backoff=Backoff(0.05, 0.2),
            )
            await adapter.start()
            await until(lambda: adapter.switch_connections == 1 and adapter.link.up)
            await until(lambda: agents(server)["ag-2"] == "ready")
            # a caller with a URL-encoded number: busy ag-1, then answered by ag-2
            await fs.park("c1", "sales", "+44 20 7946 0000")
            await until(
                lambda: (
                    adapter.calls.get("c1") is not None and adapter.calls["c1"].state == "talking"
                )
            )
            assert adapter.calls["c1"].customer == "+44 20 7946 0000"
            assert agents(server)["ag-1"] == "not_ready"  # it was busy: marked
            bridges = [c for c in fs.commands if c.startswith("sendmsg c1")]
            assert [b.split("execute-app-arg: ")[1] for b in bridges] == ["user/busy", "user/ann"]
            await fs.event("CHANNEL_HANGUP_COMPLETE", "c1")
            fs.channels.pop("c1")
            await until(lambda: "c1" not in adapter.calls)
            # ag-2 is in wrap-up/ready; make it busy elsewhere so c2 waits
            await until(lambda: agents(server)["ag-2"] == "ready")
            await fs.park("hold", "sales", "1")
            await until(
                lambda: (
                    adapter.calls.get("hold") is not None
                    and adapter.calls["hold"].state == "talking"
                )
            )
            await fs.park("c2", "sales", "2")
            await until(lambda: queue_waiting(server) == ["c2"])
            # the link drops; meanwhile c2 hangs up and c3 is parked
            fs.drop()
            await until(lambda: fs.writer is not None and fs.writer.is_closing())
            fs.channels.pop("c2")
            fs.channels["c3"] = {"app": "park", "queue": "sales", "cid": "3"}
            await until(lambda: adapter.switch_connections == 2)
            await until(lambda: "c2" not in adapter.calls and "c3" in adapter.calls)
            await until(lambda: queue_waiting(server) == ["c3"])
            assert adapter.malformed >= 1  # the event with no Unique-ID, skipped
            await adapter.close()
            assert fs.server is not None
            fs.server.close()

        asyncio.run(main())
    finally:
        server.stop()


# ---------------------------------------------------------------- Asterisk


class FakeAsterisk:
    """AMI: greeting line, Login, Setvar/Redirect/Hangup/Getvar responses by
    ActionID, CoreShowChannels as an event list; events between an action and
    its response. A Redirect to a busy Dial string ends in DialEnd BUSY."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, str]] = {}  # uniqueid -> {chan, queue, dial, app}
        self.actions: list[dict[str, str]] = []
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def send(self, **fields: str) -> None:
        assert self.writer is not None
        text = "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
        await dribble(self.writer, text.encode())

    async def arrive(self, uid: str, queue: str, cid: str) -> None:
        chan = f"PJSIP/trunk-{uid}"
        self.channels[uid] = {"chan": chan, "queue": queue, "app": "MusicOnHold", "cid": cid}
        await self.send(Event="Newchannel", Channel=chan, Uniqueid=uid, CallerIDNum=cid)
        await self.send(
            Event="UserEvent", UserEvent="AgnerArrived", Channel=chan, Uniqueid=uid,
            CallerIDNum=cid, Exten=queue, Queue=queue,
        )  # fmt: skip

    def by_chan(self, chan: str) -> str:
        return next(u for u, c in self.channels.items() if c["chan"] == chan)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connections += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()[:-4]
                act = dict(line.split(": ", 1) for line in block.split("\r\n"))
                self.actions.append(act)
                await self._action(act)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def _action(self, act: dict[str, str]) -> None:
        aid, name = act["ActionID"], act["Action"]
        if name == "Login":
            await self.send(Event="FullyBooted", Status="Fully Booted")  # before the response
            ok = act.get("Secret") == "s3cret"
            await self.send(
                Response="Success" if ok else "Error", ActionID=aid,
                Message="Authentication accepted" if ok else "Authentication failed",
            )  # fmt: skip
        elif name == "CoreShowChannels":
            await self.send(Response="Success", ActionID=aid, EventList="start", Message="follows")
            for uid, c in self.channels.items():
                await self.send(
                    Event="CoreShowChannel", ActionID=aid, Channel=c["chan"], Uniqueid=uid,
                    Application=c["app"], CallerIDNum=c["cid"],
                )  # fmt: skip
            await self.send(
                Event="CoreShowChannelsComplete", ActionID=aid, EventList="Complete",
                ListItems=str(len(self.channels)),
            )  # fmt: skip
        elif name == "Getvar":
            uid = self.by_chan(act["Channel"])
            await self.send(Response="Success", ActionID=aid, Variable="AGNER_QUEUE",
                            Value=self.channels[uid]["queue"])  # fmt: skip
        elif name == "Setvar":
            self.channels[self.by_chan(act["Channel"])]["dial"] = act["Value"]
            await self.send(Response="Success", ActionID=aid, Message="Variable Set")
        elif name == "Redirect":
            uid = self.by_chan(act["Channel"])
            await self.send(Event="Newexten", Uniqueid=uid, Context=act["Context"])  # first
            await self.send(Response="Success", ActionID=aid, Message="Redirect successful")
            busy = self.channels[uid]["dial"] == "PJSIP/busy"
            await self.send(Event="DialBegin", Uniqueid=uid, DestChannel="PJSIP/agent-1")
            await self.send(Event="DialEnd", Uniqueid=uid, DialStatus="BUSY" if busy else "ANSWER")
        elif name == "Hangup":
            uid = self.by_chan(act["Channel"])
            del self.channels[uid]
            await self.send(Response="Success", ActionID=aid, Message="Channel Hungup")
            await self.send(Event="Hangup", Uniqueid=uid, Cause=act["Cause"])
        else:
            await self.send(Response="Error", ActionID=aid, Message="Invalid/unknown command")


def test_asterisk_adapter(tmp_path: Path) -> None:
    server = ServerProcess(write_center(tmp_path / "center.toml", 3), tmp_path).start()
    try:

        async def main() -> None:
            ami = FakeAsterisk()
            port = await ami.start()
            adapter = AsteriskAdapter(
                ami=f"127.0.0.1:{port}",
                username="agner",
                secret="s3cret",
                server=server.tcp,
                token=ACME,
                agents={"ag-1": "PJSIP/busy", "ag-2": "PJSIP/ann"},
                login=["ag-1", "ag-2"],
                backoff=Backoff(0.05, 0.2),
            )
            await adapter.start()
            await until(lambda: adapter.switch_connections == 1 and adapter.link.up)
            await until(lambda: agents(server)["ag-2"] == "ready")
            # malformed input: a block with no key, and an unknown event
            await ami.send(Garbage="x")
            assert ami.writer is not None
            await dribble(ami.writer, b"no colon here\r\n\r\n")
            await ami.arrive("1700.1", "sales", "555")
            await until(
                lambda: (
                    adapter.calls.get("1700.1") is not None
                    and adapter.calls["1700.1"].state == "talking"
                )
            )
            dials = [a["Value"] for a in ami.actions if a["Action"] == "Setvar"]
            assert dials == ["PJSIP/busy", "PJSIP/ann"]
            assert agents(server)["ag-1"] == "not_ready"
            await ami.send(Event="Hangup", Uniqueid="1700.1", Cause="16")
            del ami.channels["1700.1"]
            await until(lambda: not adapter.calls)
            await until(lambda: agents(server)["ag-2"] == "ready")
            await ami.arrive("1700.2", "sales", "556")  # ag-2 takes it
            await until(
                lambda: (
                    adapter.calls.get("1700.2") is not None
                    and adapter.calls["1700.2"].state == "talking"
                )
            )
            await ami.arrive("1700.3", "sales", "557")  # waits
            await until(lambda: queue_waiting(server) == ["1700.3"])
            # AMI drops; 1700.3 hangs up, 1700.4 arrives meanwhile
            ami.writer.close()
            del ami.channels["1700.3"]
            ami.channels["1700.4"] = {
                "chan": "PJSIP/trunk-1700.4", "queue": "sales", "app": "MusicOnHold", "cid": "558",
            }  # fmt: skip
            await until(lambda: adapter.switch_connections == 2)
            await until(lambda: "1700.3" not in adapter.calls and "1700.4" in adapter.calls)
            await until(lambda: queue_waiting(server) == ["1700.4"])
            assert adapter.malformed >= 1
            await adapter.close()
            assert ami.server is not None
            ami.server.close()

        asyncio.run(main())
    finally:
        server.stop()


# ---------------------------------------------------------------- Kamailio's evapi


class FakeEvapi:
    """Kamailio's evapi socket as the adapter sees it: netstring JSON both ways;
    ``drop`` closes the connection (the adapter reconnects)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        try:
            while True:
                n = int((await reader.readuntil(b":"))[:-1])
                self.got.append(json.loads((await reader.readexactly(n + 1))[:-1]))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def event(self, **fields: Any) -> None:
        body = json.dumps(fields).encode()
        await dribble(self.writers[-1], b"%d:%s," % (len(body), body))

    def cmds(self, cmd: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [g for g in self.got if g["cmd"] == cmd and call_id in (None, g.get("call_id"))]

    async def drop(self) -> None:
        n = len(self.writers)
        self.writers[-1].close()
        self.got.clear()
        await until(lambda: len(self.writers) == n + 1)


def test_kamailio_adapter_skips_bad_frames_and_reconciles_after_evapi_drops(tmp_path: Path) -> None:
    """Against a fake evapi socket: malformed netstrings and JSON are skipped; a
    queued caller hears 182; when evapi comes back the adapter asks Kamailio
    about each waiting call and a call that is gone is abandoned in agner."""
    from agner.adapters.kamailio import KamailioAdapter

    server = ServerProcess(write_center(tmp_path / "center.toml", 1), tmp_path).start()
    try:

        async def main() -> None:
            fake = FakeEvapi()
            port = await fake.start()
            got, writers = fake.got, fake.writers
            adapter = KamailioAdapter(
                evapi=f"127.0.0.1:{port}", server=server.tcp, token=ACME, agents={}, login=[],
                backoff=Backoff(0.05, 0.2),
            )  # fmt: skip
            await adapter.start()
            await adapter.wait_up()
            invite = json.dumps(
                {"event": "invite", "call_id": "k1", "tindex": 7, "tlabel": 9, "cseq": "1",
                 "code": 0, "queue": "sales", "from": "555"}
            ).encode()  # fmt: skip
            bad = b"abc:xx," + b"5:{bad}," + b"12:not-json-at," + b'9:{"x":1}' + b"X,"
            await dribble(writers[0], bad + b"%d:%s," % (len(invite), invite))
            await until(lambda: any(g.get("code") == 182 for g in got))
            assert adapter.malformed >= 3
            assert queue_waiting(server) == ["k1"]
            writers[0].close()
            await until(lambda: len(writers) == 2 and any(g.get("cmd") == "check" for g in got))
            check = next(g for g in got if g.get("cmd") == "check")
            assert (check["call_id"], check["tindex"], check["tlabel"]) == ("k1", 7, 9)
            gone = b'{"event":"gone","call_id":"k1"}'
            await dribble(writers[1], b"%d:%s," % (len(gone), gone))
            await until(lambda: not adapter.calls)
            await until(lambda: queue_waiting(server) == [])
            await adapter.close()
            assert fake.server is not None
            fake.server.close()

        asyncio.run(main())
    finally:
        server.stop()


def test_kamailio_adapter_catches_up_after_evapi_drops_and_dials_out(tmp_path: Path) -> None:
    """Against a fake evapi socket: what Kamailio says of each call after evapi
    came back (a ringing call answered meanwhile, a ringing call whose agent
    failed, an answered call that ended, a waiting call gone) reaches agner;
    a dial rings the agent with the token in its URI and the REFER, follows
    the agent's call out by its Call-ID, and gives up at its deadline."""
    from agner.adapters.kamailio import KamailioAdapter

    server = ServerProcess(write_center(tmp_path / "center.toml", 2), tmp_path).start()
    try:

        async def main() -> None:
            ev = FakeEvapi()
            port = await ev.start()
            adapter = KamailioAdapter(
                evapi=f"127.0.0.1:{port}", server=server.tcp, token=ACME,
                agent_uri="sip:{agent}@10.0.0.20", login=["ag-1", "ag-2"], ring_ms=100,
                ring_every_s=0.2, dial_uri="sip:{number}@gw.example.net",
                backoff=Backoff(0.05, 0.2),
            )  # fmt: skip
            adapter.dial_grace_ms = 300
            await adapter.start()
            await adapter.wait_up()
            await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready"})

            async def invite(cid: str) -> dict[str, Any]:
                await ev.event(event="invite", call_id=cid, tindex=1, tlabel=2, cseq="1",
                               queue="sales", **{"from": "555"})  # fmt: skip
                await until(lambda: bool(ev.cmds("relay", cid)))
                return ev.cmds("relay", cid)[0]

            k1 = await invite("k1")  # linear: ag-1 first
            assert k1["uri"] == "sip:ag-1@10.0.0.20"
            k2 = await invite("k2")
            assert k2["uri"] == "sip:ag-2@10.0.0.20"
            # evapi drops; meanwhile ag-1 answered k1 and ag-2 was busy for k2
            await ev.drop()
            await until(lambda: len(ev.cmds("check")) == 2)
            await ev.event(event="status", call_id="k1", state="talking")
            await ev.event(event="alive", call_id="k2", tindex=1, tlabel=2)
            await until(lambda: agents(server) == {"ag-1": "busy", "ag-2": "not_ready"})
            assert adapter.calls["k1"].state == "talking"
            assert adapter.calls["k2"].state == "queued"
            assert queue_waiting(server) == ["k2"]
            # again; meanwhile k1 ended and k2's caller hung up
            await ev.drop()
            await until(lambda: len(ev.cmds("check")) == 2)
            await ev.event(event="status", call_id="k1", state="ended")
            await ev.event(event="status", call_id="k2", state="gone")
            await until(lambda: not adapter.calls and queue_waiting(server) == [])
            await until(lambda: agents(server)["ag-1"] == "ready")

            # click-to-dial for ag-1: its phone, then the customer, by token
            adapter.link.send(Dial("sales", "5550100", call_id="out-1", agent="ag-1"))
            await until(lambda: bool(ev.cmds("dial")))
            dial = ev.cmds("dial")[0]
            token = dial["token"]
            assert dial["agent"] == f"sip:ag-1@10.0.0.20;agner={token}"
            assert dial["refer"] == f"<sip:5550100@gw.example.net;agner={token}>"
            assert dial["customer"] == "sip:5550100@gw.example.net"
            await ev.event(event="dial_answered", token=token)
            await until(lambda: agents(server)["ag-1"] == "busy")
            await ev.event(event="dialing", token=token, call_id="sip-out-1")
            await asyncio.sleep(0.6)  # past the deadline: the call out is Kamailio's now
            assert adapter.calls["out-1"].state == "talking"
            await ev.event(event="bye", call_id="sip-out-1")
            await until(lambda: not adapter.calls and agents(server)["ag-1"] == "ready")

            # a dial whose phone never answers: no_answer at the deadline
            ev.got.clear()
            adapter.link.send(Dial("sales", "5550101", call_id="out-2", agent="ag-1"))
            await until(lambda: bool(ev.cmds("dial")))
            await until(lambda: agents(server)["ag-1"] == "not_ready", timeout=5)
            assert "out-2" not in adapter.calls and not adapter.dials
            await adapter.close()
            assert ev.server is not None
            ev.server.close()

        asyncio.run(main())
    finally:
        server.stop()
