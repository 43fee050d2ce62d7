"""The FreeSWITCH (event socket) and Asterisk (AMI) adapters against fake
servers that speak the documented wire formats, with `agner serve` behind:
partial frames, URL-encoded event bodies, events between a command and its
reply, malformed input, and a disconnect with calls changing meanwhile."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import pytest
from serve_harness import ACME, ServerProcess
from sip_harness import write_center

from agner.adapters.asterisk import AsteriskAdapter
from agner.adapters.freeswitch import FreeSwitchAdapter
from agner.adapters.kamailio import KamailioAdapter
from agner.adapters.link import AgnerLink, Backoff
from agner.protocol import (
    Answered,
    ClientMessage,
    Connect,
    Dial,
    Login,
    Logout,
    NoAnswer,
    NotReady,
    Ready,
    Revoked,
)


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


def records(tmp: Path) -> dict[str, tuple[Any, ...]]:
    """call id -> (outcome, agent, disposition) of agner's interaction records."""
    db = tmp / "crm.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(interactions)")]
        if not cols:
            return {}
        out: dict[str, tuple[Any, ...]] = {}
        for r in con.execute("SELECT * FROM interactions"):
            d = dict(zip(cols, r, strict=True))
            ref = str(d.get("ref", "")).rsplit("@", 1)[0]
            out[ref] = (d.get("outcome"), d.get("agent"), d.get("disposition"))
        return out


async def record_of(tmp: Path, call_id: str) -> tuple[Any, ...]:
    await until(lambda: call_id in records(tmp))
    return records(tmp)[call_id]


# ---------------------------------------------------------------- FreeSWITCH


class FakeFreeSwitch:
    """mod_event_socket, inbound: auth/request, command/reply, api/response,
    text/event-plain with URL-encoded bodies. Busy agents' bridges complete at
    once; others are bridged (answered).

    ``bgapi originate {vars}DIAL &bridge(CUSTOMER)`` with a ``Job-UUID``
    header: the reply names the job, the outcome is a BACKGROUND_JOB event
    (its result as the event's own body) and CHANNEL_* events of the
    ``origination_uuid``, by the agent's dial string (see :meth:`_originate`)
    and the customer's number (:meth:`_bridge`)."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, str]] = {}  # uuid -> {app, queue, cid, ...}
        self.commands: list[str] = []
        self.originated: list[dict[str, str]] = []  # uid, job, dial, customer, vars
        self.rings: dict[str, dict[str, Any]] = {}  # caller -> {arg, legs: {leg: dial}}
        self.rung: list[dict[str, str]] = []  # every leg of a parallel bridge: leg, dial, vars
        self.refuse = False  # auth fails: the adapter stays away until it is cleared
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

    async def job(self, job: str, result: str, command: str = "originate") -> None:
        """A BACKGROUND_JOB event: its headers, then the command's output as
        the event's own body (with its own Content-Length)."""
        fields = {"Job-UUID": job, "Job-Command": command, "Event-Name": "BACKGROUND_JOB"}
        head = "".join(f"{k}: {quote(v)}\n" for k, v in fields.items())
        body = f"{head}Content-Length: {len(result)}\n\n{result}"
        await self.raw(
            f"Content-Length: {len(body)}\nContent-Type: text/event-plain\n\n{body}".encode()
        )

    async def answer(self, uid: str) -> None:
        """The agent picks up an originated call: the job ends +OK, then the
        bridge to the customer runs."""
        ch = self.channels[uid]
        ch["callstate"] = "ACTIVE"
        await self.event("CHANNEL_ANSWER", uid, variable_agner_call_id=ch["call"])
        await self.job(ch["job"], f"+OK {uid}\n")
        await self._bridge(uid)

    def picked_up(self, uid: str) -> None:
        """While the adapter is away: the agent answered, then the customer."""
        self.channels[uid].update(callstate="ACTIVE", bridge_to=f"b-{uid}")

    async def hangup(self, uid: str, cause: str = "NORMAL_CLEARING") -> None:
        self.channels.pop(uid, None)
        await self.event("CHANNEL_HANGUP_COMPLETE", uid, **{"Hangup-Cause": cause})

    async def _originate(self, args: str, job: str) -> None:
        """The agent's dial string decides: user/ann answers; user/busy ends
        the job -ERR USER_BUSY (then the channel's hangup); user/noanswer
        hangs up NO_ANSWER (then the job's -ERR); user/hold rings until
        :meth:`answer`; user/never: FreeSWITCH says nothing at all."""
        leg, _, app = args.partition(" ")
        end = leg.index("}")
        tags = dict(kv.split("=", 1) for kv in leg[1:end].split(","))
        dial, uid = leg[end + 1 :], tags["origination_uuid"]
        assert app.startswith("&bridge(") and app.endswith(")"), app
        customer = app[len("&bridge(") : -1]
        self.originated.append({"uid": uid, "job": job, "dial": dial, "customer": customer, **tags})
        if dial == "user/never":
            return
        if dial == "user/busy":
            await self.job(job, "-ERR USER_BUSY\n")
            await self.event("CHANNEL_HANGUP_COMPLETE", uid, **{"Hangup-Cause": "USER_BUSY"})
            return
        if dial == "user/noanswer":
            await self.event("CHANNEL_HANGUP_COMPLETE", uid, **{"Hangup-Cause": "NO_ANSWER"})
            await self.job(job, "-ERR NO_ANSWER\n")
            return
        self.channels[uid] = {
            "app": "bridge", "queue": "", "cid": "", "callstate": "RINGING", "job": job,
            "customer": customer, "call": tags.get("agner_call_id", ""),
        }  # fmt: skip
        if dial == "user/ann":
            await self.answer(uid)

    async def _bridge(self, uid: str) -> None:
        """The customer's number decides: ...busy is busy (the bridge ends,
        then the agent's leg hangs up), ...hold rings on, others answer."""
        number = self.channels[uid]["customer"].rsplit("/", 1)[1]
        if number.endswith("busy"):
            await self.event(
                "CHANNEL_EXECUTE_COMPLETE", uid, Application="bridge",
                variable_originate_disposition="USER_BUSY",
            )  # fmt: skip
            await self.hangup(uid)
        elif not number.endswith("hold"):
            self.channels[uid]["bridge_to"] = f"b-{uid}"
            await self.event("CHANNEL_BRIDGE", uid, **{"Other-Leg-Unique-ID": f"b-{uid}"})

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
            ok = first == "auth ClueCon" and not self.refuse
            await self.reply("+OK accepted" if ok else "-ERR invalid")
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
                {"uuid": u, "application": c["app"], "cid_num": c["cid"], "dest": "800",
                 "callstate": c.get("callstate", "ACTIVE")}
                for u, c in self.channels.items()
            ]  # fmt: skip
            await self.api(json.dumps({"row_count": len(rows), "rows": rows}))
        elif first.startswith("api uuid_getvar "):
            _, _, uuid, var = first.split()
            if uuid not in self.channels:
                await self.api("-ERR No such channel!")
            else:
                key = {"agner_queue": "queue"}.get(var, var)
                await self.api(self.channels[uuid].get(key) or "_undef_")
        elif first.startswith("api uuid_kill "):
            uuid, cause = first.split()[2:4]
            if "ring" in self.channels.get(uuid, {}):
                await self.api("+OK")
                await self.end_leg(uuid, cause)
            elif self.channels.pop(uuid, None) is None:
                await self.api("-ERR No such channel!")
            else:
                await self.api("+OK")
                await self.event("CHANNEL_HANGUP_COMPLETE", uuid, **{"Hangup-Cause": cause})
        elif first.startswith("bgapi originate "):
            job = cmd.split("\nJob-UUID: ")[1].split("\n")[0]
            if "user/denied" in first:
                await self.reply("-ERR permission denied")
                return
            await self.raw(
                f"Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\n"
                f"Job-UUID: {job}\n\n".encode()
            )
            await self._originate(first[len("bgapi originate ") :], job)
        elif first.startswith("sendmsg "):
            uuid = first.split()[1]
            dial = cmd.split("execute-app-arg: ")[1].split("\n")[0]
            await self.reply("+OK")
            if "," in dial:
                await self._ring(uuid, dial)
            elif dial == "user/hold":
                self.rings[uuid] = {"arg": dial, "legs": {}}  # rings until bridged()
            elif dial == "user/busy":
                await self.event("CHANNEL_EXECUTE_COMPLETE", uuid, Application="bridge")
            else:
                self.channels[uuid]["app"] = "bridge"
                await self.event("CHANNEL_BRIDGE", uuid)
        else:
            await self.reply("-ERR command not found")

    async def _ring(self, caller: str, arg: str) -> None:
        """``bridge`` of comma-separated legs, each ``[origination_uuid=LEG,...]DIAL``:
        user/gone gets no channel; user/busy and user/noanswer hang up at once;
        user/ann answers (the others lose the race); user/hold rings until
        :meth:`answer_leg`. When every leg has ended, the bridge completes."""
        parts, depth, start = [], 0, 0
        for i, ch in enumerate(arg + ","):
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                parts.append(arg[start:i])
                start = i + 1
        legs: dict[str, str] = {}
        self.rings[caller] = {"arg": arg, "legs": legs}
        for part in parts:
            end = part.index("]")
            tags = dict(kv.split("=", 1) for kv in part[1:end].split(","))
            leg, dial = tags["origination_uuid"], part[end + 1 :]
            self.rung.append({"leg": leg, "dial": dial, **tags})
            if dial != "user/gone":
                legs[leg] = dial
                self.channels[leg] = {"app": "", "queue": "", "cid": "", "callstate": "RINGING",
                                      "ring": caller}  # fmt: skip
        for leg, dial in list(legs.items()):
            if dial in ("user/busy", "user/noanswer"):
                await self.end_leg(leg, "USER_BUSY" if dial == "user/busy" else "NO_ANSWER")
        ann = [leg for leg, dial in legs.items() if dial == "user/ann"]
        if ann:
            await self.answer_leg(ann[0])
        elif not legs and caller in self.rings:  # no leg got a channel
            await self._ring_over(caller, "USER_NOT_REGISTERED")

    async def end_leg(self, leg: str, cause: str) -> None:
        """A leg of a parallel bridge ends; the bridge completes after its last."""
        caller = self.channels.pop(leg)["ring"]
        await self.event("CHANNEL_HANGUP_COMPLETE", leg, **{"Hangup-Cause": cause})
        ring = self.rings.get(caller)
        if ring is not None and ring["legs"].pop(leg, None) is not None and not ring["legs"]:
            await self._ring_over(caller, cause)

    async def _ring_over(self, caller: str, cause: str) -> None:
        arg = self.rings.pop(caller)["arg"]
        await self.event(
            "CHANNEL_EXECUTE_COMPLETE", caller, Application="bridge",
            **{"Application-Data": arg, "variable_originate_disposition": cause},
        )  # fmt: skip

    async def answer_leg(self, leg: str) -> None:
        """The agent of a ringing leg picks up: the other legs lose the race."""
        caller = self.channels[leg]["ring"]
        legs = self.rings.pop(caller)["legs"]
        self.channels[leg].update(callstate="ACTIVE")
        await self.event("CHANNEL_ANSWER", leg)
        for other in [x for x in legs if x != leg]:
            del self.channels[other]
            await self.event("CHANNEL_HANGUP_COMPLETE", other, **{"Hangup-Cause": "LOSE_RACE"})
        self.channels[caller]["app"] = "bridge"
        await self.event("CHANNEL_BRIDGE", caller, **{"Other-Leg-Unique-ID": leg})

    async def leave(self, caller: str) -> None:
        """The caller hangs up while its legs ring: they are cancelled first."""
        for leg in self.rings.pop(caller)["legs"]:
            del self.channels[leg]
            await self.event(
                "CHANNEL_HANGUP_COMPLETE", leg, **{"Hangup-Cause": "ORIGINATOR_CANCEL"}
            )
        await self.hangup(caller)

    def holding(self, caller: str) -> bool:
        """A serial bridge of the caller (user/hold) rings."""
        return self.rings.get(caller) == {"arg": "user/hold", "legs": {}}

    async def bridged(self, caller: str) -> None:
        """The one agent of a serial bridge (user/hold) picks up."""
        del self.rings[caller]
        self.channels[caller]["app"] = "bridge"
        await self.event("CHANNEL_BRIDGE", caller)

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
    its response. A Redirect to a busy Dial string ends in DialEnd BUSY.

    ``Originate`` (Async, ChannelId, Application Dial): "successfully queued",
    then Newchannel, the originate's own DialBegin/DialEnd (no calling
    channel: Dest* fields only), OriginateResponse by the ActionID, and the
    Dial to the customer (DialBegin/DialEnd of the agent's channel), by the
    agent's Channel (see :meth:`_originate`) and the customer's number."""

    def __init__(self) -> None:
        self.channels: dict[str, dict[str, str]] = {}  # uniqueid -> {chan, queue, dial, app}
        self.actions: list[dict[str, str]] = []
        self.variables: list[list[str]] = []  # the Variable lines of each Originate
        self.rings: dict[str, dict[str, str]] = {}  # caller -> {dest uniqueid: dial} ringing
        self.rung: list[dict[str, str]] = []  # every destination of a Dial(A&B): leg, dial
        self.refuse = False  # Login fails: the adapter stays away until it is cleared
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
        """A channel by its name, or else by its Uniqueid (as Asterisk finds one)."""
        return next((u for u, c in self.channels.items() if c["chan"] == chan), chan)

    async def hangup(self, uid: str, cause: str = "16", text: str = "Normal Clearing") -> None:
        ch = self.channels.pop(uid)
        await self.send(
            Event="Hangup", Channel=ch["chan"], Uniqueid=uid, Cause=cause, **{"Cause-txt": text}
        )

    def drop(self) -> None:
        assert self.writer is not None
        self.writer.close()

    def picked_up(self, uid: str) -> None:
        """While the adapter is away: the agent answered, then the customer."""
        self.channels[uid].update(state="Up", bridge=f"bridge-{uid}")

    async def _ring(self, caller: str, dial: str) -> None:
        """``Dial(A&B&...)``: a channel and a DialBegin per destination (none
        for PJSIP/gone: it cannot be requested); PJSIP/busy and
        PJSIP/noanswer end at once, PJSIP/ann answers (the others are
        cancelled), PJSIP/hold rings until :meth:`answer_leg`."""
        legs: dict[str, str] = {}
        self.rings[caller] = legs
        for i, d in enumerate(dial.split("&")):
            leg = f"{caller}-{i}"
            self.rung.append({"leg": leg, "dial": d})
            if d == "PJSIP/gone":
                continue
            chan = f"{d}-{len(self.rung):08x}"
            legs[leg] = d
            self.channels[leg] = {"chan": chan, "queue": "", "app": "AppDial", "cid": "",
                                  "state": "Ringing", "ring": caller}  # fmt: skip
            await self.send(
                Event="DialBegin", Channel=self.channels[caller]["chan"], Uniqueid=caller,
                DestChannel=chan, DestUniqueid=leg, DialString=d.partition("/")[2],
            )  # fmt: skip
        for leg, d in list(legs.items()):
            if d in ("PJSIP/busy", "PJSIP/noanswer"):
                await self.end_leg(leg, "BUSY" if d == "PJSIP/busy" else "NOANSWER")
        ann = [leg for leg, d in legs.items() if d == "PJSIP/ann"]
        if ann:
            await self.answer_leg(ann[0])
        if not legs:  # Dial() returns (CHANUNAVAIL when none got a channel: no DialEnd at all)
            self.rings.pop(caller, None)

    async def end_leg(self, leg: str, status: str) -> None:
        ch = self.channels.pop(leg)
        caller = ch["ring"]
        await self.send(Event="DialEnd", Channel=self.channels[caller]["chan"], Uniqueid=caller,
                        DestChannel=ch["chan"], DestUniqueid=leg, DialStatus=status)  # fmt: skip
        await self.send(Event="Hangup", Channel=ch["chan"], Uniqueid=leg, Cause="16")
        ring = self.rings.get(caller)
        if ring is not None:
            ring.pop(leg, None)
            if not ring:
                del self.rings[caller]  # Dial() returns: the caller waits again

    async def answer_leg(self, leg: str) -> None:
        """The agent of a ringing destination picks up: Dial() cancels the others."""
        ch = self.channels[leg]
        caller = ch["ring"]
        legs = self.rings.pop(caller)
        ch["state"] = "Up"
        await self.send(Event="DialEnd", Channel=self.channels[caller]["chan"], Uniqueid=caller,
                        DestChannel=ch["chan"], DestUniqueid=leg, DialStatus="ANSWER")  # fmt: skip
        for other in [x for x in legs if x != leg]:
            och = self.channels.pop(other)
            await self.send(Event="DialEnd", Channel=self.channels[caller]["chan"],
                            Uniqueid=caller, DestChannel=och["chan"], DestUniqueid=other,
                            DialStatus="CANCEL")  # fmt: skip
            await self.send(Event="Hangup", Channel=och["chan"], Uniqueid=other, Cause="26")
        self.channels[caller]["app"] = "Dial"

    async def leave(self, caller: str) -> None:
        """The caller hangs up while its destinations ring: Dial() cancels them."""
        for leg in self.rings.pop(caller):
            och = self.channels.pop(leg)
            await self.send(Event="DialEnd", Channel=self.channels[caller]["chan"],
                            Uniqueid=caller, DestChannel=och["chan"], DestUniqueid=leg,
                            DialStatus="CANCEL")  # fmt: skip
            await self.send(Event="Hangup", Channel=och["chan"], Uniqueid=leg, Cause="16")
        await self.hangup(caller)

    def holding(self, caller: str) -> bool:
        """A serial Dial() of the caller (PJSIP/hold) rings."""
        return self.rings.get(caller) == {}

    async def bridged(self, caller: str) -> None:
        """The one agent of a serial Dial() (PJSIP/hold) picks up."""
        del self.rings[caller]
        self.channels[caller]["app"] = "Dial"
        await self.send(Event="DialEnd", Uniqueid=caller, DialStatus="ANSWER")

    async def answer(self, uid: str) -> None:
        """The agent picks up an originated call: OriginateResponse Success,
        then Dial() calls the customer."""
        ch = self.channels[uid]
        ch["state"] = "Up"
        await self.send(Event="DialEnd", DestChannel=ch["chan"], DestUniqueid=uid,
                        DialStatus="ANSWER")  # fmt: skip
        await self.send(
            Event="OriginateResponse", ActionID=ch["aid"], Response="Success", Channel=ch["chan"],
            Context="", Exten="", Application="Dial", Data=ch["data"], Reason="4", Uniqueid=uid,
            CallerIDNum="<unknown>", CallerIDName="<unknown>",
        )  # fmt: skip
        number = ch["data"].split(",")[0].split("/")[1].split("@")[0]
        await self.send(Event="DialBegin", Channel=ch["chan"], Uniqueid=uid,
                        DestChannel=f"PJSIP/trunk-{uid}", DestUniqueid=f"b-{uid}")  # fmt: skip
        if number.endswith("hold"):
            return
        status = "BUSY" if number.endswith("busy") else "ANSWER"
        await self.send(Event="DialEnd", Channel=ch["chan"], Uniqueid=uid,
                        DestUniqueid=f"b-{uid}", DialStatus=status)  # fmt: skip
        if status == "ANSWER":
            ch["bridge"] = f"bridge-{uid}"
        else:
            await self.hangup(uid, "17", "User busy")  # Dial() returned: the channel ends

    async def _originate(self, act: dict[str, str]) -> None:
        """The agent's Channel decides: PJSIP/ann answers; PJSIP/busy ends
        its channel (Hangup) before OriginateResponse Failure reason 5;
        PJSIP/noanswer: Failure reason 3; PJSIP/gone: no channel at all,
        Failure reason 0; PJSIP/hold rings until :meth:`answer`;
        PJSIP/never: Asterisk says nothing after queuing it."""
        aid, uid, agent = act["ActionID"], act["ChannelId"], act["Channel"]
        if agent == "PJSIP/never":
            return
        failure = {"PJSIP/busy": "5", "PJSIP/noanswer": "3", "PJSIP/gone": "0"}.get(agent)
        chan = f"{agent}-{len(self.variables):08x}"
        if agent != "PJSIP/gone":
            self.channels[uid] = {"chan": chan, "queue": "", "app": "AppDial", "cid": "",
                                  "state": "Ringing", "aid": aid, "data": act["Data"]}  # fmt: skip
            await self.send(Event="Newchannel", Channel=chan, Uniqueid=uid,
                            ChannelStateDesc="Down")  # fmt: skip
            await self.send(Event="DialBegin", DestChannel=chan, DestUniqueid=uid)
        if failure is None:
            if agent == "PJSIP/ann":
                await self.answer(uid)
            return
        if agent == "PJSIP/busy":
            await self.hangup(uid, "17", "User busy")
        elif uid in self.channels:
            del self.channels[uid]
        await self.send(
            Event="OriginateResponse", ActionID=aid, Response="Failure", Channel=agent,
            Context="", Exten="", Application="Dial", Data=act["Data"], Reason=failure,
            Uniqueid="<null>", CallerIDNum="<unknown>", CallerIDName="<unknown>",
        )  # fmt: skip

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connections += 1
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()[:-4]
                pairs = [line.split(": ", 1) for line in block.split("\r\n")]
                act = dict(pairs)
                self.actions.append(act)
                if act["Action"] == "Originate":  # Variable may repeat
                    self.variables.append([v for k, v in pairs if k == "Variable"])
                await self._action(act)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def _action(self, act: dict[str, str]) -> None:
        aid, name = act["ActionID"], act["Action"]
        if name == "Login":
            await self.send(Event="FullyBooted", Status="Fully Booted")  # before the response
            ok = act.get("Secret") == "s3cret" and not self.refuse
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
                    ChannelStateDesc=c.get("state", "Up"), BridgeId=c.get("bridge", ""),
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
            dial = self.channels[uid]["dial"]
            if "&" in dial:
                await self._ring(uid, dial)
                return
            if dial == "PJSIP/hold":
                self.rings[uid] = {}  # rings until bridged()
                return
            busy = dial == "PJSIP/busy"
            await self.send(Event="DialBegin", Uniqueid=uid, DestChannel="PJSIP/agent-1")
            await self.send(Event="DialEnd", Uniqueid=uid, DialStatus="BUSY" if busy else "ANSWER")
        elif name == "Hangup":
            uid = self.by_chan(act["Channel"])
            if uid not in self.channels:
                await self.send(Response="Error", ActionID=aid, Message="No such channel")
                return
            if "ring" in self.channels[uid]:
                await self.send(Response="Success", ActionID=aid, Message="Channel Hungup")
                await self.end_leg(uid, "CANCEL")
                return
            chan = self.channels.pop(uid)["chan"]
            await self.send(Response="Success", ActionID=aid, Message="Channel Hungup")
            await self.send(Event="Hangup", Channel=chan, Uniqueid=uid, Cause=act["Cause"])
        elif name == "Originate":
            if act["Channel"] == "PJSIP/denied":
                await self.send(Response="Error", ActionID=aid, Message="Permission denied")
                return
            await self.send(Response="Success", ActionID=aid,
                            Message="Originate successfully queued")  # fmt: skip
            await self._originate(act)
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


# ---------------------------------------------------------------- callbacks and click-to-dial

DIAL_CENTER = 'max_wait_s = 1\noverflow = "callback"'  # a caller waiting 1 s is called back


async def check_dials(
    adapter: FreeSwitchAdapter | AsteriskAdapter,
    fake: FakeFreeSwitch | FakeAsterisk,
    server: ServerProcess,
    tmp: Path,
    arrive: Callable[[str, str, str], Awaitable[None]],
    busy: str,
    failing: list[str],
    never: str,
    hold: str,
    junk: Callable[[str], Awaitable[None]],
) -> dict[str, str]:
    """The same scenarios against either switch. ``adapter.agents``: ag-1's
    phone answers at once; the others' dial strings are set here: ``failing``
    do not answer (busy, no answer, refused), ``never``: the switch says
    nothing about it, ``hold``: rings until the test answers it.
    ``arrive(uid, queue, number)`` hands the switch a caller; ``busy``: the
    cause of a busy customer; ``junk(uid)`` sends what the adapter must skip
    while the dial ``uid`` rings, one of them malformed. Returns call id ->
    the agent leg's uid of the dials, for the checks of the switch's side."""
    link = adapter.link
    legs: dict[str, str] = {}
    ann = adapter.agents["ag-1"]

    def state(call_id: str) -> str:
        call = adapter.calls.get(call_id)
        if call is None:
            return "gone"
        return "bridged" if call.bridged else call.state

    async def ready(*names: str) -> None:
        for name in names:
            link.send(Ready(name))
        # ready, or already offered what waits for it
        await until(lambda: all(agents(server)[n] != "not_ready" for n in names))

    async def not_ready(*names: str) -> None:
        for name in names:
            link.send(NotReady(name))
        await until(lambda: all(agents(server)[n] == "not_ready" for n in names))

    async def talk_and_hang_up(call_id: str, agent: str) -> None:
        await until(lambda: state(call_id) == "bridged")
        legs[call_id] = adapter.calls[call_id].uid
        await until(lambda: agents(server)[agent] == "busy")
        await fake.hangup(legs[call_id])
        assert await record_of(tmp, call_id) == ("answered", agent, None)
        await until(lambda: call_id not in adapter.calls)

    for name in ("ag-1", "ag-2", "ag-3"):
        link.send(Login(name))
    await until(lambda: set(agents(server).values()) == {"not_ready"})

    # a caller waits past max_wait_s: the switch releases the line (diverted
    # to callback); once ag-1 is ready its phone rings, then the caller's number
    await arrive("cb-1", "sales", "5550199")
    await until(lambda: "cb-1" not in adapter.calls and "cb-1" not in fake.channels)
    await ready("ag-1")
    await talk_and_hang_up("cb-1", "ag-1")
    await until(lambda: agents(server)["ag-1"] == "ready")

    # click-to-dial from ag-1's desktop: its phone, then the customer
    link.send(Dial("sales", "5550100", call_id="out-1", agent="ag-1"))
    await talk_and_hang_up("out-1", "ag-1")
    await until(lambda: agents(server)["ag-1"] == "ready")

    # the customer is busy: the contact ends with its record, not reached
    link.send(Dial("sales", "555busy", call_id="out-2", agent="ag-1"))
    assert await record_of(tmp, "out-2") == ("answered", "ag-1", f"not reached ({busy})")
    await until(lambda: not adapter.calls and agents(server)["ag-1"] == "ready")

    # the agent's phone does not answer (or the switch refuses to ring it):
    # no_answer (RONA), and agner offers the contact to the next agent
    await not_ready("ag-1")
    for i, dial in enumerate(failing):
        call_id = f"fail-{i}"
        adapter.agents["ag-2"] = dial
        await ready("ag-2")
        link.send(Dial("sales", "5550150", call_id=call_id))
        await until(lambda: agents(server)["ag-2"] == "not_ready")
        assert call_id not in adapter.calls and queue_waiting(server) == [call_id], dial
        await ready("ag-1")
        await talk_and_hang_up(call_id, "ag-1")
        await not_ready("ag-1")

    # the switch never says a word: the adapter gives up at ring_s + grace,
    # hangs the agent's leg up and tells agner (no_answer)
    adapter.agents["ag-3"] = never
    await ready("ag-3")
    link.send(Dial("sales", "5550160", call_id="out-3"))
    await until(lambda: state("out-3") == "ringing")
    legs["silent"] = adapter.calls["out-3"].uid
    await until(lambda: agents(server)["ag-3"] == "not_ready", adapter.ring_s + 5)
    assert "out-3" not in adapter.calls
    await ready("ag-1")
    await talk_and_hang_up("out-3", "ag-1")

    # the switch link drops while ag-1's phone rings; meanwhile the agent and
    # the customer pick up: the adapter catches up when the link is back
    adapter.agents["ag-1"] = hold
    link.send(Dial("sales", "5550170", call_id="out-4", agent="ag-1"))
    await until(lambda: state("out-4") == "ringing" and adapter.calls["out-4"].uid in fake.channels)
    fake.refuse = True
    fake.drop()
    await until(lambda: adapter.writer is None)
    fake.picked_up(adapter.calls["out-4"].uid)
    fake.refuse = False
    await until(lambda: adapter.switch_connections == 2)
    await talk_and_hang_up("out-4", "ag-1")

    # again, while ag-1's phone rings; meanwhile it gives up (the leg is gone)
    # and a dial for ag-3 is asked for: ag-1 is no_answer, ag-3's dial is
    # placed once the switch is back
    link.send(Dial("sales", "5550180", call_id="out-5", agent="ag-1"))
    await until(lambda: state("out-5") == "ringing" and adapter.calls["out-5"].uid in fake.channels)
    fake.refuse = True
    fake.drop()
    await until(lambda: adapter.writer is None)
    del fake.channels[adapter.calls["out-5"].uid]
    adapter.agents["ag-3"] = ann
    await ready("ag-3")
    link.send(Dial("sales", "5550190", call_id="out-6", agent="ag-3"))
    await until(lambda: state("out-6") == "ringing")
    assert not adapter.calls["out-6"].placed
    fake.refuse = False
    await until(lambda: adapter.switch_connections == 3)
    await until(lambda: agents(server)["ag-1"] == "not_ready" and "out-5" not in adapter.calls)
    await talk_and_hang_up("out-6", "ag-3")

    # out-5 is offered to ag-1 again (its phone rings on): what the switch
    # says that is not about it, or unreadable, is skipped
    link.send(Ready("ag-1"))
    await until(lambda: "out-5" in adapter.calls and adapter.calls["out-5"].placed)
    uid = adapter.calls["out-5"].uid
    await until(lambda: uid in fake.channels)
    malformed = adapter.malformed
    await junk(uid)
    await until(lambda: adapter.malformed == malformed + 1)
    assert state("out-5") == "ringing"
    await fake.answer(uid)
    await talk_and_hang_up("out-5", "ag-1")
    return legs


Switch = FreeSwitchAdapter | AsteriskAdapter
T = TypeVar("T")


def against_fake(
    tmp: Path,
    fake: FakeFreeSwitch | FakeAsterisk,
    adapter_for: Callable[[int, str], Switch],
    check: Callable[[Switch, ServerProcess], Awaitable[T]],
    queue_extra: str,
    ring_timeout_s: int = 60,
    agents: int = 3,
    relay: Relay | None = None,
) -> T:
    """``check(adapter, server)`` against ``agner serve`` (``agents`` agents, the
    queue's ``queue_extra``) and ``fake``, through the adapter
    ``adapter_for(fake's port, agner's address)``; with ``relay``, the adapter
    reaches agner through it (the check may cut and restore the link)."""
    center = write_center(tmp / "center.toml", agents, ring_timeout_s, queue_extra=queue_extra)
    server = ServerProcess(center, tmp).start()
    try:

        async def main() -> T:
            agner = server.tcp if relay is None else await relay.start(server.tcp)
            adapter = adapter_for(await fake.start(), agner)
            await adapter.start()
            await until(lambda: adapter.switch_connections == 1 and adapter.link.up)
            result = await check(adapter, server)
            await adapter.close()
            if relay is not None:
                relay.cut()
            assert fake.server is not None
            fake.server.close()
            return result

        return asyncio.run(main())
    finally:
        server.stop()


def dial_scenarios(
    tmp: Path,
    fake: FakeFreeSwitch | FakeAsterisk,
    adapter_for: Callable[[int, str], Switch],
    **switch: Any,
) -> dict[str, str]:
    """:func:`check_dials` against ``agner serve`` and ``fake``; ``switch``:
    the rest of its arguments."""

    def quick(port: int, agner: str) -> Switch:
        adapter = adapter_for(port, agner)
        adapter.dial_grace_s = 0.5
        return adapter

    return against_fake(
        tmp, fake, quick,
        lambda adapter, server: check_dials(adapter, fake, server, tmp, **switch),
        queue_extra=DIAL_CENTER,
    )  # fmt: skip


def test_freeswitch_places_callbacks_and_click_to_dial(tmp_path: Path) -> None:
    """bgapi originate of the agent's phone, then &bridge to the customer:
    every outcome reaches agner (answered, customer busy, agent busy / no
    answer / refused, a silent switch), and a dropped event socket is caught
    up with; unreadable job results are skipped."""
    fs = FakeFreeSwitch()

    async def junk(uid: str) -> None:
        await fs.job("3f1c-not-ours", "+OK 3f1c\n")
        await fs.job(uid, "Segmentation fault\n")  # neither +OK nor -ERR: malformed
        await fs.reply("+OK nobody asked")
        await fs.event("CHANNEL_ANSWER", "someone-else")

    legs = dial_scenarios(
        tmp_path, fs,
        lambda port, agner: FreeSwitchAdapter(
            esl=f"127.0.0.1:{port}", password="ClueCon", server=agner, token=ACME,
            agents={"ag-1": "user/ann", "ag-2": "user/ann", "ag-3": "user/ann"},
            dial="sofia/gateway/gw/{number}", ring_s=3, backoff=Backoff(0.05, 0.2),
        ),
        arrive=fs.park, busy="USER_BUSY", failing=["user/busy", "user/noanswer", "user/denied"],
        never="user/never", hold="user/hold", junk=junk,
    )  # fmt: skip
    # what FreeSWITCH was asked: the agent's leg tagged, then the customer
    uid = legs["out-1"]
    sent = (
        f"bgapi originate {{origination_uuid={uid},originate_timeout=3,call_timeout=3,"
        "hangup_after_bridge=true,agner_call_id=out-1}user/ann "
        f"&bridge(sofia/gateway/gw/5550100)\nJob-UUID: {uid}"
    )
    assert sent in fs.commands
    cb = next(o for o in fs.originated if o["uid"] == legs["cb-1"])
    assert (cb["agner_call_id"], cb["customer"]) == ("cb-1", "sofia/gateway/gw/5550199")
    assert f"api uuid_kill {legs['silent']} ORIGINATOR_CANCEL" in fs.commands
    denied = [c for c in fs.commands if c.startswith("bgapi") and "}user/denied " in c]
    assert len(denied) == 1  # refused once (-ERR): not tried again


def test_asterisk_places_callbacks_and_click_to_dial(tmp_path: Path) -> None:
    """AMI Originate (Async, ChannelId) of the agent's phone, then Dial() of
    the customer: every outcome reaches agner (answered, customer busy, agent
    busy / no answer / unavailable / refused, a silent switch), and a dropped
    AMI link is caught up with; unexpected OriginateResponses are skipped."""
    ami = FakeAsterisk()

    async def junk(uid: str) -> None:
        aid = ami.channels[uid]["aid"]
        await ami.send(Event="OriginateResponse", ActionID="someone-7", Response="Success")
        await ami.send(Event="OriginateResponse", ActionID=aid, Reason="4", Uniqueid=uid)
        await ami.send(Event="DialEnd", Uniqueid="1699.9", DialStatus="ANSWER")

    legs = dial_scenarios(
        tmp_path, ami,
        lambda port, agner: AsteriskAdapter(
            ami=f"127.0.0.1:{port}", username="agner", secret="s3cret", server=agner, token=ACME,
            agents={"ag-1": "PJSIP/ann", "ag-2": "PJSIP/ann", "ag-3": "PJSIP/ann"},
            dial="PJSIP/{number}@trunk", ring_s=3, backoff=Backoff(0.05, 0.2),
        ),
        arrive=ami.arrive, busy="BUSY",
        failing=["PJSIP/busy", "PJSIP/noanswer", "PJSIP/gone", "PJSIP/denied"],
        never="PJSIP/never", hold="PJSIP/hold", junk=junk,
    )  # fmt: skip
    # what Asterisk was asked: the agent's channel, then Dial() of the customer
    originates = [a for a in ami.actions if a["Action"] == "Originate"]
    i = next(i for i, a in enumerate(originates) if a["ChannelId"] == legs["out-1"])
    assert {k: v for k, v in originates[i].items() if k not in ("ActionID", "Variable")} == {
        "Action": "Originate", "Channel": "PJSIP/ann", "Application": "Dial",
        "Data": "PJSIP/5550100@trunk,3", "Timeout": "3000", "ChannelId": legs["out-1"],
        "Async": "true",
    }  # fmt: skip
    assert ami.variables[i] == ["AGNER_NUMBER=5550100", "AGNER_CALL=out-1"]
    hangups = [a["Channel"] for a in ami.actions if a["Action"] == "Hangup"]
    assert legs["silent"] in hangups  # the silent one, by its Uniqueid


@pytest.mark.parametrize("switch", ["freeswitch", "asterisk"])
@pytest.mark.parametrize(
    ("agent", "dial", "number"),
    [
        ("ag-1", "gw/{number}", "5550100 &park()\n\nbgapi originate user/1002"),  # injected
        ("ag-1", "gw/{number}", "555,0100"),  # would end a variable or an argument
        ("ag-1", None, "5550100"),  # no --dial
        ("ag-9", "gw/{number}", "5550100"),  # no dial string for the agent
    ],
)
def test_a_dial_the_switch_cannot_place_is_no_answer(
    switch: str, agent: str, dial: str | None, number: str
) -> None:
    """Nothing is sent to the switch; agner hears no_answer (and offers it again)."""
    common: dict[str, Any] = {
        "server": "127.0.0.1:9", "token": ACME, "agents": {"ag-1": "user/1001"}, "dial": dial,
    }  # fmt: skip
    adapter: FreeSwitchAdapter | AsteriskAdapter
    if switch == "freeswitch":
        adapter = FreeSwitchAdapter(esl="127.0.0.1:9", password="x", **common)
    else:
        adapter = AsteriskAdapter(ami="127.0.0.1:9", username="u", secret="s", **common)
    adapter.on_agner(Connect("out-1", agent, "sales", "voice", dial=number))
    assert not adapter.calls and not adapter.legs
    (held,) = adapter.link.held  # the link is down: held for agner
    assert msgspec.msgpack.decode(held, type=ClientMessage) == NoAnswer("out-1", agent)


class Relay:
    """A TCP relay between the adapter and agner serve: ``cut`` drops the
    adapter's link and keeps the port closed until ``restore``."""

    def __init__(self) -> None:
        self.target = ("", 0)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, target: str) -> str:
        """Relay to ``target`` (HOST:PORT); the relay's own address."""
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", self.port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return f"127.0.0.1:{self.port}"

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
            except ConnectionError:
                pass
            finally:
                w.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        self.writers.clear()

    async def restore(self) -> None:
        await self.start(f"{self.target[0]}:{self.target[1]}")


def test_dial_survives_a_dropped_agner_link(tmp_path: Path) -> None:
    """While the link to agner is down, agner gives up on the ringing agent
    (its ring timeout) and offers the dial to another: when the link is back,
    the adapter learns it from query_contact, stops the first phone and rings
    the second. An answer while the link is down reaches agner once it is back."""
    fs, relay = FakeFreeSwitch(), Relay()

    def adapter_for(port: int, agner: str) -> Switch:
        return FreeSwitchAdapter(
            esl=f"127.0.0.1:{port}", password="ClueCon", server=agner,
            token=ACME, agents={"ag-1": "user/hold", "ag-2": "user/ann"},
            dial="sofia/gateway/gw/{number}", ring_s=30, backoff=Backoff(0.05, 0.2),
        )  # fmt: skip

    async def check(adapter: Switch, server: ServerProcess) -> None:
        link = adapter.link

        def ringing(call_id: str) -> bool:
            call = adapter.calls.get(call_id)
            return call is not None and call.uid in fs.channels

        for name in ("ag-1", "ag-2"):
            link.send(Login(name))
            link.send(Ready(name))
        await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready"})

        link.send(Dial("sales", "5550100", call_id="out-1"))  # linear: ag-1 first
        await until(lambda: ringing("out-1"))
        first = adapter.calls["out-1"].uid
        relay.cut()
        await until(lambda: not link.up)
        # agner's ring timer: ag-1 RONA, out-1 offered to ag-2 (the connect is lost)
        await until(lambda: agents(server) == {"ag-1": "not_ready", "ag-2": "reserved"})
        await relay.restore()
        await until(lambda: "out-1" in adapter.calls and adapter.calls["out-1"].bridged)
        assert f"api uuid_kill {first} ORIGINATOR_CANCEL" in fs.commands
        assert first not in fs.channels
        second = adapter.calls["out-1"].uid
        assert [o["dial"] for o in fs.originated] == ["user/hold", "user/ann"]
        await until(lambda: agents(server)["ag-2"] == "busy")
        await fs.hangup(second)
        assert await record_of(tmp_path, "out-1") == ("answered", "ag-2", None)

        # ag-1's phone rings; the link drops; the agent answers meanwhile
        link.send(Ready("ag-1"))
        link.send(Dial("sales", "5550101", call_id="out-2", agent="ag-1"))
        await until(lambda: ringing("out-2"))
        relay.cut()
        await until(lambda: not link.up)
        await fs.answer(adapter.calls["out-2"].uid)
        await until(lambda: adapter.calls["out-2"].bridged)
        await relay.restore()
        await until(lambda: link.up and agents(server)["ag-1"] == "busy")
        await fs.hangup(adapter.calls["out-2"].uid)
        assert await record_of(tmp_path, "out-2") == ("answered", "ag-1", None)

    against_fake(tmp_path, fs, adapter_for, check, "", ring_timeout_s=2, agents=2, relay=relay)


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

    async def invite(self, call_id: str, tindex: int = 1) -> dict[str, Any]:
        """A caller's INVITE, suspended (``tindex``, tlabel 2): the adapter's
        first relay of it, once agner has chosen."""
        await self.event(event="invite", call_id=call_id, tindex=tindex, tlabel=2, cseq="1",
                         queue="sales", **{"from": "555"})  # fmt: skip
        await until(lambda: bool(self.cmds("relay", call_id)))
        return self.cmds("relay", call_id)[0]

    def cmds(self, cmd: str, call_id: str | None = None) -> list[dict[str, Any]]:
        return [g for g in self.got if g["cmd"] == cmd and call_id in (None, g.get("call_id"))]

    async def drop(self) -> None:
        n = len(self.writers)
        self.writers[-1].close()
        self.got.clear()
        await until(lambda: len(self.writers) == n + 1)


def against_evapi(
    tmp: Path,
    center: Path,
    scenario: Callable[[KamailioAdapter, FakeEvapi, ServerProcess], Awaitable[None]],
    **options: Any,
) -> None:
    """``scenario(adapter, fake evapi, server)`` against ``agner serve`` with
    ``center``, through a Kamailio adapter (``options``: its keywords) whose
    evapi socket is a :class:`FakeEvapi`, once both links are up."""
    server = ServerProcess(center, tmp).start()
    try:

        async def main() -> None:
            ev = FakeEvapi()
            port = await ev.start()
            adapter = KamailioAdapter(
                evapi=f"127.0.0.1:{port}", server=server.tcp, token=ACME,
                backoff=Backoff(0.05, 0.2), **options,
            )  # fmt: skip
            await adapter.start()
            await adapter.wait_up()
            await scenario(adapter, ev, server)
            await adapter.close()
            assert ev.server is not None
            ev.server.close()

        asyncio.run(main())
    finally:
        server.stop()


def test_kamailio_adapter_skips_bad_frames_and_reconciles_after_evapi_drops(tmp_path: Path) -> None:
    """Against a fake evapi socket: malformed netstrings and JSON are skipped; a
    queued caller hears 182; when evapi comes back the adapter asks Kamailio
    about each waiting call and a call that is gone is abandoned in agner."""

    async def scenario(adapter: KamailioAdapter, ev: FakeEvapi, server: ServerProcess) -> None:
        got, writers = ev.got, ev.writers
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

    center = write_center(tmp_path / "center.toml", 1)
    against_evapi(
        tmp_path,
        center,
        scenario,
        agents={},
        login=[],
    )


def test_kamailio_adapter_catches_up_after_evapi_drops_and_dials_out(tmp_path: Path) -> None:
    """Against a fake evapi socket: what Kamailio says of each call after evapi
    came back (a ringing call answered meanwhile, a ringing call whose agent
    failed, an answered call that ended, a waiting call gone) reaches agner;
    a dial rings the agent with the token in its URI and the REFER, follows
    the agent's call out by its Call-ID, and gives up at its deadline."""

    async def scenario(adapter: KamailioAdapter, ev: FakeEvapi, server: ServerProcess) -> None:
        adapter.dial_grace_ms = 300
        await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready"})
        invite = ev.invite

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

    center = write_center(tmp_path / "center.toml", 2)
    against_evapi(
        tmp_path,
        center,
        scenario,
        agent_uri="sip:{agent}@10.0.0.20",
        login=["ag-1", "ag-2"],
        ring_ms=100,
        ring_every_s=0.2,
        dial_uri="sip:{number}@gw.example.net",
    )


# ---------------------------------------------------------------- parallel offers

PARALLEL_CENTER = "parallel = 0"  # ring-all: every ready agent at once


async def check_parallel(
    adapter: FreeSwitchAdapter | AsteriskAdapter,
    fake: FakeFreeSwitch | FakeAsterisk,
    server: ServerProcess,
    tmp: Path,
    arrive: Callable[[str, str, str], Awaitable[None]],
    dials: dict[str, str],
    stopped: Callable[[str], bool],
) -> None:
    """The same parallel offers against either switch. ``dials``: the dial
    strings of a phone that answers (ann), is busy (busy), does not answer
    (noanswer), cannot be rung at all (gone), rings until the test answers
    (hold); ``stopped(leg)``: the adapter asked the switch to stop that leg."""
    link = adapter.link
    names = ("ag-1", "ag-2", "ag-3")

    def call(call_id: str) -> Any:
        return adapter.calls.get(call_id)

    def state(call_id: str) -> str:
        c = call(call_id)
        return "gone" if c is None else c.state

    async def ready(*dialed: tuple[str, str]) -> None:
        for name, kind in dialed:
            adapter.agents[name] = dials[kind]
            link.send(Ready(name))
        # ready, or already offered what waits for it
        await until(lambda: all(agents(server)[n] != "not_ready" for n, _ in dialed))

    async def settle() -> None:
        """Every agent not ready (wrap-up is 0 s; RONA left some not ready)."""
        for name in names:
            link.send(NotReady(name))
        await until(lambda: set(agents(server).values()) == {"not_ready"})

    async def hang_up(call_id: str, agent: str) -> None:
        await until(lambda: agents(server)[agent] == "busy")
        await fake.hangup(call_id)
        assert await record_of(tmp, call_id) == ("answered", agent, None)
        await until(lambda: call_id not in adapter.calls)

    for name in names:
        link.send(Login(name))
    await until(lambda: set(agents(server).values()) == {"not_ready"})

    # one answers: both rang in one command; the other is released (taken)
    # and its leg stopped by the switch
    await ready(("ag-1", "hold"), ("ag-2", "ann"))
    await arrive("p1", "sales", "5551")
    await until(lambda: state("p1") == "talking")
    assert call("p1").agent == "ag-2"
    assert [r["dial"] for r in fake.rung] == [dials["hold"], dials["ann"]]
    await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "busy", "ag-3": "not_ready"})
    assert not fake.rings and not adapter.ring_legs
    await hang_up("p1", "ag-2")
    await settle()

    # every phone fails: each agent is RONA, the caller waits again; then
    # one agent rings alone (a serial offer, as before) and answers
    await ready(("ag-1", "busy"), ("ag-2", "gone"))
    await arrive("p2", "sales", "5552")
    await until(lambda: agents(server)["ag-1"] == agents(server)["ag-2"] == "not_ready")
    await until(lambda: state("p2") == "queued" and queue_waiting(server) == ["p2"])
    await ready(("ag-3", "ann"))
    await hang_up("p2", "ag-3")
    await settle()

    # one fails while the other rings on, and answers later
    fake.rung.clear()
    await ready(("ag-1", "noanswer"), ("ag-2", "hold"))
    await arrive("p3", "sales", "5553")
    await until(lambda: agents(server)["ag-1"] == "not_ready")
    await until(lambda: state("p3") == "ringing" and call("p3").offers == ["ag-2"])
    assert agents(server)["ag-2"] == "reserved"
    await fake.answer_leg(call("p3").offer_legs["ag-2"])
    await hang_up("p3", "ag-2")
    await settle()

    # agner revokes one of them (logout): only its leg stops; a late connect
    # (one that comes while the ring runs) is held, not rung and not blamed
    await ready(("ag-1", "hold"), ("ag-2", "hold"))
    await arrive("p4", "sales", "5554")
    await until(lambda: state("p4") == "ringing" and len(call("p4").offer_legs) == 2)
    first = call("p4").offer_legs["ag-1"]
    link.send(Logout("ag-1"))
    await until(lambda: call("p4").offers == ["ag-2"] and stopped(first))
    await until(lambda: first not in fake.channels)
    assert call("p4").offer_legs["ag-2"] in fake.channels
    rung = len(fake.rung)
    adapter.on_agner(Connect("p4", "ag-3", "sales", "voice"))
    await asyncio.sleep(0.1)
    assert call("p4").held == ["ag-3"] and len(fake.rung) == rung
    await fake.answer_leg(call("p4").offer_legs["ag-2"])
    await hang_up("p4", "ag-2")
    assert call("p4") is None
    link.send(Login("ag-1"))
    await settle()

    # agner's ring timeout: every leg stops, each agent is RONA, and the
    # contact rings the next agent alone; the end of the stopped ring does
    # not count against that agent
    await ready(("ag-1", "hold"), ("ag-2", "hold"))
    await arrive("p5", "sales", "5555")
    await until(lambda: state("p5") == "ringing" and len(call("p5").offer_legs) == 2)
    legs = list(call("p5").offer_legs.values())
    await ready(("ag-3", "hold"))
    await until(lambda: agents(server)["ag-3"] == "reserved", timeout=15)
    assert agents(server)["ag-1"] == agents(server)["ag-2"] == "not_ready"
    await until(lambda: all(stopped(leg) and leg not in fake.channels for leg in legs))
    await until(lambda: state("p5") == "ringing" and call("p5").agent == "ag-3")
    await until(lambda: fake.holding("p5"))
    await asyncio.sleep(0.2)
    assert agents(server)["ag-3"] == "reserved"
    await fake.bridged("p5")
    await hang_up("p5", "ag-3")
    await settle()

    # the switch link drops while two ring; meanwhile ag-2 answers and ag-1's
    # leg is gone: when it is back, ag-2 has the call and ag-1 is released
    await ready(("ag-1", "hold"), ("ag-2", "hold"))
    await arrive("p6", "sales", "5556")
    await until(lambda: state("p6") == "ringing" and len(call("p6").offer_legs) == 2)
    first, second = call("p6").offer_legs["ag-1"], call("p6").offer_legs["ag-2"]
    await until(lambda: first in fake.channels and second in fake.channels)
    fake.refuse = True
    fake.drop()
    await until(lambda: adapter.writer is None)
    del fake.channels[first], fake.rings["p6"]
    fake.picked_up(second)
    fake.refuse = False
    await until(lambda: state("p6") == "talking" and call("p6").agent == "ag-2")
    await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "busy", "ag-3": "not_ready"})
    await hang_up("p6", "ag-2")

    # the caller hangs up while two ring: abandoned, and neither agent is blamed
    await until(lambda: agents(server)["ag-2"] == "ready")
    await arrive("p7", "sales", "5557")
    await until(lambda: state("p7") == "ringing" and len(call("p7").offer_legs) == 2)
    await until(lambda: all(leg in fake.channels for leg in call("p7").offer_legs.values()))
    await fake.leave("p7")
    assert await record_of(tmp, "p7") == ("abandoned", None, None)
    await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready", "ag-3": "not_ready"})
    assert "p7" not in adapter.calls and not adapter.ring_legs


def parallel_scenarios(
    tmp: Path,
    fake: FakeFreeSwitch | FakeAsterisk,
    adapter_for: Callable[[int, str], Switch],
    **switch: Any,
) -> None:
    """:func:`check_parallel` against ``agner serve`` (ring-all, a 3 s ring
    timeout) and ``fake``; ``switch``: the rest of its arguments."""
    against_fake(
        tmp, fake, adapter_for,
        lambda adapter, server: check_parallel(adapter, fake, server, tmp, **switch),
        queue_extra=PARALLEL_CENTER, ring_timeout_s=3,
    )  # fmt: skip


def test_freeswitch_rings_a_parallel_offer_at_once(tmp_path: Path) -> None:
    """One bridge with comma-separated legs, each tagged with its own
    origination_uuid and agent: the answer, each leg's failure and the end of
    the ring reach agner by agent; a revoke kills only that agent's leg."""
    fs = FakeFreeSwitch()
    parallel_scenarios(
        tmp_path, fs,
        lambda port, agner: FreeSwitchAdapter(
            esl=f"127.0.0.1:{port}", password="ClueCon", server=agner, token=ACME,
            agents={}, backoff=Backoff(0.05, 0.2),
        ),
        arrive=fs.park,
        dials={k: f"user/{k}" for k in ("ann", "busy", "noanswer", "gone", "hold")},
        stopped=lambda leg: f"api uuid_kill {leg} ORIGINATOR_CANCEL" in fs.commands,
    )  # fmt: skip
    (bridge,) = [c for c in fs.commands if c.startswith("sendmsg p1")]
    legs = bridge.split("execute-app-arg: ")[1].split("]")
    assert legs[0].startswith("[origination_uuid=") and legs[0].endswith(",agner_agent=ag-1")
    assert legs[1].startswith("user/hold,[origination_uuid=")
    assert legs[1].endswith(",agner_agent=ag-2") and legs[2] == "user/ann"


def test_asterisk_rings_a_parallel_offer_at_once(tmp_path: Path) -> None:
    """One Dial(A&B): DialBegin names each agent's channel, its DialEnd is
    that agent's answer or failure (a destination never rung fails when the
    others have), a revoke hangs up only that agent's channel."""
    ami = FakeAsterisk()
    parallel_scenarios(
        tmp_path, ami,
        lambda port, agner: AsteriskAdapter(
            ami=f"127.0.0.1:{port}", username="agner", secret="s3cret", server=agner,
            token=ACME, agents={}, backoff=Backoff(0.05, 0.2),
        ),
        arrive=ami.arrive,
        dials={k: f"PJSIP/{k}" for k in ("ann", "busy", "noanswer", "gone", "hold")},
        stopped=lambda leg: any(
            a["Action"] == "Hangup" and a["Channel"] == leg for a in ami.actions
        ),
    )  # fmt: skip
    setvars = [a["Value"] for a in ami.actions if a["Action"] == "Setvar"]
    assert setvars[0] == "PJSIP/hold&PJSIP/ann"
    assert "PJSIP/busy&PJSIP/gone" in setvars and "PJSIP/ann" in setvars  # p2: then ag-3 alone


def test_kamailio_adapter_forks_a_parallel_offer(tmp_path: Path) -> None:
    """Against a fake evapi socket: a parallel offer is one relay with every
    agent (uri, then more/n); each branch's failure and answer reach agner
    for its agent; an agent agner revoked (logout) that answers ends the
    contact in agner (the others are released, not blamed); agner's ring
    timeout re-offers it while the fork rings (held, relayed once the fork
    has failed); after evapi drops, Kamailio's status names the branch."""

    async def scenario(adapter: KamailioAdapter, ev: FakeEvapi, server: ServerProcess) -> None:
        link = adapter.link
        await until(lambda: set(agents(server).values()) == {"ready"})
        link.send(NotReady("ag-3"))
        await until(lambda: agents(server)["ag-3"] == "not_ready")
        uri = "sip:{}@10.0.0.20".format
        invite = ev.invite

        # one relay for both; ag-2's branch is busy, ag-1's answers
        k1 = await invite("k1")
        assert (k1["uri"], k1["more"], k1["n"]) == (uri("ag-1"), uri("ag-2"), 1)
        assert len(ev.cmds("relay")) == 1
        await ev.event(event="branch_failed", call_id="k1", branch=1, code=486)
        await until(lambda: agents(server)["ag-2"] == "not_ready")
        assert agents(server)["ag-1"] == "reserved"
        await ev.event(event="answered", call_id="k1", branch=0)
        await until(lambda: agents(server)["ag-1"] == "busy")
        await ev.event(event="bye", call_id="k1")
        assert await record_of(tmp_path, "k1") == ("answered", "ag-1", None)

        # ag-2 logs out while both ring: its branch rings on (tm cannot
        # stop it) and answers: the contact ends in agner, ag-1 is released
        link.send(Ready("ag-2"))
        await until(lambda: agents(server)["ag-2"] == "ready")
        await invite("k2")
        await until(lambda: agents(server)["ag-2"] == "reserved")
        link.send(Logout("ag-2"))
        await until(lambda: adapter.calls["k2"].offers == ["ag-1"])
        await ev.event(event="answered", call_id="k2", branch=1)
        assert await record_of(tmp_path, "k2") == ("abandoned", None, None)
        await until(lambda: "k2" not in adapter.calls and agents(server)["ag-1"] == "ready")
        await ev.event(event="bye", call_id="k2")  # Kamailio's call: nothing more for agner

        # agner's ring timeout while the fork rings: both RONA, the contact
        # is offered to ag-3 (held); Kamailio's fork fails later (RING_MS)
        # and only then is ag-3 rung, alone
        link.send(Login("ag-2"))
        link.send(Ready("ag-2"))
        await until(lambda: agents(server)["ag-2"] == "ready")
        await invite("k3", tindex=3)
        link.send(Ready("ag-3"))
        await until(lambda: adapter.calls["k3"].held == ["ag-3"], timeout=5)
        assert agents(server) == {"ag-1": "not_ready", "ag-2": "not_ready", "ag-3": "reserved"}
        assert len(ev.cmds("relay", "k3")) == 1
        await ev.event(event="failed", call_id="k3", tindex=7, tlabel=8, code=408)
        await until(lambda: len(ev.cmds("relay", "k3")) == 2)
        again = ev.cmds("relay", "k3")[1]
        assert (again["uri"], again["tindex"], again["tlabel"]) == (uri("ag-3"), 7, 8)
        assert "more" not in again
        await ev.event(event="answered", call_id="k3", branch=0)
        await until(lambda: agents(server)["ag-3"] == "busy")
        await ev.event(event="bye", call_id="k3")
        assert await record_of(tmp_path, "k3") == ("answered", "ag-3", None)

        # evapi drops while three ring; meanwhile ag-3 answered (branch 2)
        for name in ("ag-1", "ag-2"):
            link.send(Ready(name))
        await until(lambda: set(agents(server).values()) == {"ready"})
        k4 = await invite("k4")
        assert (k4["more"], k4["n"]) == (f"{uri('ag-2')}|{uri('ag-3')}", 2)
        await ev.drop()
        await until(lambda: bool(ev.cmds("check")))
        await ev.event(event="status", call_id="k4", state="talking", branch=2)
        await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready", "ag-3": "busy"})

    center = write_center(tmp_path / "center.toml", 3, ring_timeout_s=2, queue_extra="parallel = 0")
    against_evapi(
        tmp_path,
        center,
        scenario,
        agent_uri="sip:{agent}@10.0.0.20",
        login=["ag-1", "ag-2", "ag-3"],
    )


def test_parallel_ring_survives_a_dropped_agner_link(tmp_path: Path) -> None:
    """While the link to agner is down, both agents of a parallel ring log out
    and agner offers the call to ag-3 (the revokes and the connect are lost):
    when the link is back, query_contact tells the adapter, which stops both
    legs and rings ag-3."""
    fs, relay = FakeFreeSwitch(), Relay()

    def adapter_for(port: int, agner: str) -> Switch:
        return FreeSwitchAdapter(
            esl=f"127.0.0.1:{port}", password="ClueCon", server=agner,
            token=ACME, agents={n: "user/hold" for n in ("ag-1", "ag-2", "ag-3")},
            backoff=Backoff(0.05, 0.2),
        )  # fmt: skip

    async def check(adapter: Switch, server: ServerProcess) -> None:
        link = adapter.link
        for name in ("ag-1", "ag-2", "ag-3"):
            link.send(Login(name))
        for name in ("ag-1", "ag-2"):
            link.send(Ready(name))
        await until(lambda: agents(server) == {"ag-1": "ready", "ag-2": "ready",
                                                   "ag-3": "not_ready"})  # fmt: skip
        await fs.park("p1", "sales", "5551")
        await until(lambda: "p1" in adapter.calls and len(adapter.calls["p1"].offer_legs) == 2)
        legs = list(adapter.calls["p1"].offer_legs.values())
        relay.cut()
        await until(lambda: not link.up)
        other = AgnerLink(server.tcp, ACME, lambda msg: None)  # another service session
        other.start()
        await other.wait_up()
        for msg in (Logout("ag-1"), Logout("ag-2"), Ready("ag-3")):
            other.send(msg)
        await until(lambda: agents(server) == {"ag-1": "logged_out", "ag-2": "logged_out",
                                                   "ag-3": "reserved"})  # fmt: skip
        await relay.restore()
        await until(lambda: adapter.calls["p1"].agent == "ag-3")
        await until(lambda: [c.split("execute-app-arg: ")[1] for c in fs.commands
                                 if c.startswith("sendmsg p1")][-1] == "user/hold")  # fmt: skip
        assert all(f"api uuid_kill {leg} ORIGINATOR_CANCEL" in fs.commands for leg in legs)
        await until(lambda: fs.holding("p1"))
        await asyncio.sleep(0.2)  # the end of the stopped bridge blames nobody
        assert agents(server)["ag-3"] == "reserved"
        await fs.bridged("p1")
        await until(lambda: agents(server)["ag-3"] == "busy")
        await fs.hangup("p1")
        assert await record_of(tmp_path, "p1") == ("answered", "ag-3", None)
        await other.close()

    against_fake(tmp_path, fs, adapter_for, check, "parallel = 0", relay=relay)


def test_asterisk_stops_a_revoked_agents_channel_once_dial_names_it() -> None:
    """agner revokes one agent of a parallel ring before Dial()'s DialBegin
    named its channel: the channel is hung up as soon as it is named, and its
    DialEnd then blames nobody; the other agent's answer takes the call."""

    class Recording(AsteriskAdapter):
        def __init__(self) -> None:
            super().__init__(
                ami="127.0.0.1:9", username="u", secret="s", server="127.0.0.1:9",
                token=ACME, agents={"ag-1": "PJSIP/1001", "ag-2": "PJSIP/1002"},
            )  # fmt: skip
            self.sent: list[tuple[str, dict[str, str]]] = []

        def _fire(self, name: str, fields: dict[str, str], *rest: Any, **kw: Any) -> str:
            self.sent.append((name, fields))
            return "agner-0"

    async def main() -> Recording:
        ami = Recording()
        ami._event({"Event": "UserEvent", "UserEvent": "AgnerArrived", "Uniqueid": "1.1",
                    "Channel": "PJSIP/trunk-1", "Queue": "sales"})  # fmt: skip
        ami.on_agner(Connect("1.1", "ag-1", "sales", "voice"))
        ami.on_agner(Connect("1.1", "ag-2", "sales", "voice"))
        await asyncio.sleep(0)  # the end of the read: one Dial() for both
        assert ami.sent == [
            ("Setvar", {"Channel": "PJSIP/trunk-1", "Variable": "AGNER_DIAL",
                        "Value": "PJSIP/1001&PJSIP/1002"}),
            ("Redirect", {"Channel": "PJSIP/trunk-1", "Context": "agner-agents", "Exten": "s",
                          "Priority": "1"}),
        ]  # fmt: skip
        ami.on_agner(Revoked("1.1", "ag-1", "logout"))
        for n, dial in ((1, "1001"), (2, "1002")):
            ami._event({"Event": "DialBegin", "Uniqueid": "1.1", "DestUniqueid": f"1.{n + 1}",
                        "DestChannel": f"PJSIP/{dial}-0000000{n}", "DialString": dial})  # fmt: skip
        assert ami.sent[2:] == [("Hangup", {"Channel": "1.2", "Cause": "16"})]
        ami._event({"Event": "DialEnd", "Uniqueid": "1.1", "DestUniqueid": "1.2",
                    "DialStatus": "NOANSWER"})  # fmt: skip
        ami._event({"Event": "DialEnd", "Uniqueid": "1.1", "DestUniqueid": "1.3",
                    "DialStatus": "ANSWER"})  # fmt: skip
        assert (ami.calls["1.1"].state, ami.calls["1.1"].agent) == ("talking", "ag-2")
        return ami

    ami = asyncio.run(main())
    held = [msgspec.msgpack.decode(m, type=ClientMessage) for m in ami.link.held]
    assert [type(m).__name__ for m in held] == ["Arrived", "Answered"]
    assert held[1] == Answered("1.1", "ag-2")
