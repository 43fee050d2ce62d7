"""``agner adapter kamailio|freeswitch|asterisk``: run one telephony adapter
between a switch and ``agner serve`` until SIGTERM or SIGINT (docs/ADAPTERS.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import Any, Protocol

from agner.adapters.link import parse_address

__all__ = ["add_commands"]


class _Adapter(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Refused(Exception):
    """A bad command line: the message says which option and why."""


def _address(text: str, option: str) -> str:
    try:
        parse_address(text)
    except ValueError:
        raise _Refused(f"{option}: not a HOST:PORT address: {text!r}") from None
    return text


def _agents(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, address = pair.partition("=")
        if not sep or not name.strip() or not address.strip():
            raise _Refused(f"--agent: expected NAME=ADDRESS, got {pair!r}")
        out[name.strip()] = address.strip()
    return out


def _secret(value: str | None, env: str, option: str) -> str:
    value = value if value is not None else os.environ.get(env)
    if not value:
        raise _Refused(f"{option} (or the environment variable {env}) is required")
    return value


def _kamailio(args: argparse.Namespace) -> _Adapter:
    from agner.adapters.kamailio import KamailioAdapter, check_settings

    agents = _agents(args.agent)
    options = {"agents": "--agent NAME=URI", "ring_every_s": "--ring-every"}
    check_settings(
        evapi=args.evapi,
        agents=agents,
        agent_uri=args.agent_uri,
        dial_uri=args.dial_uri,
        ring_ms=args.ring_ms,
        ring_every_s=args.ring_every,
        name=lambda k: options.get(k, "--" + k.replace("_", "-")),
    )
    return KamailioAdapter(
        evapi=args.evapi,
        server=_address(args.server, "--server"),
        token=_secret(args.token, "AGNER_TOKEN", "--token"),
        agents=agents,
        agent_uri=args.agent_uri,
        login=args.login,
        ring_ms=args.ring_ms,
        ring_every_s=args.ring_every,
        dial_uri=args.dial_uri,
    )


def _switch_agents(args: argparse.Namespace) -> dict[str, str]:
    agents = _agents(args.agent)
    if not agents:
        raise _Refused("give each agent's dial string: --agent NAME=DIAL (at least one)")
    return agents


def _dial(args: argparse.Namespace) -> str | None:
    """--dial and --ring-s of the FreeSWITCH and Asterisk adapters."""
    if args.ring_s <= 0:
        raise _Refused("--ring-s must be > 0")
    if args.dial is None:
        return None
    if "{number}" not in args.dial:
        raise _Refused(f"--dial: no {{number}} in {args.dial!r}")
    if any(c.isspace() for c in args.dial):
        raise _Refused(f"--dial: a dial string has no spaces or line breaks: {args.dial!r}")
    return str(args.dial)


def _freeswitch(args: argparse.Namespace) -> _Adapter:
    from agner.adapters.freeswitch import FreeSwitchAdapter

    return FreeSwitchAdapter(
        esl=_address(args.esl, "--esl"),
        password=_secret(args.password, "AGNER_ESL_PASSWORD", "--password"),
        server=_address(args.server, "--server"),
        token=_secret(args.token, "AGNER_TOKEN", "--token"),
        agents=_switch_agents(args),
        login=args.login,
        dial=_dial(args),
        ring_s=args.ring_s,
    )


def _asterisk(args: argparse.Namespace) -> _Adapter:
    from agner.adapters.asterisk import AsteriskAdapter

    return AsteriskAdapter(
        ami=_address(args.ami, "--ami"),
        username=args.username,
        secret=_secret(args.secret, "AGNER_AMI_SECRET", "--secret"),
        server=_address(args.server, "--server"),
        token=_secret(args.token, "AGNER_TOKEN", "--token"),
        agents=_switch_agents(args),
        login=args.login,
        context=args.context,
        dial=_dial(args),
        ring_s=args.ring_s,
    )


async def _serve(adapter: _Adapter, banner: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await adapter.start()
    print(banner, flush=True)
    try:
        await stop.wait()
    finally:
        await adapter.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _run(args: argparse.Namespace) -> int:
    name = f"agner adapter {args.switch}"
    try:
        adapter = args.build(args)
    except (_Refused, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    switch = {"kamailio": "evapi", "freeswitch": "esl", "asterisk": "ami"}[args.switch]
    banner = f"{name}: {switch} {getattr(args, switch)}, agner {args.server}"
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(_serve(adapter, banner))
    return 0


def _common(p: argparse.ArgumentParser, address: str, what: str) -> None:
    p.add_argument(
        "--server",
        required=True,
        metavar="HOST:PORT",
        help="agner serve's --tcp address (the adapter opens a switch session there)",
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="the tenant's service token (default: the environment variable AGNER_TOKEN, "
        "which keeps it out of the process list)",
    )
    p.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="NAME=" + address,
        help=f"an agent's {what} (repeat for each agent)",
    )
    p.add_argument(
        "--login",
        action="append",
        default=[],
        metavar="NAME",
        help="an agent to log in and make ready each time the link to agner comes up, "
        "for agents without a desktop (repeat for each)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what goes to stderr (default: info: links up and down, skipped input)",
    )


def _dial_options(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument(
        "--dial",
        metavar="TEMPLATE",
        help="the customer's dial string for callbacks and click-to-dial, {number} replaced "
        f"by the number (e.g. '{example}'): the agent's phone rings first, and once the "
        "agent answers the switch calls the customer and bridges the two; without it "
        "agner's dials are answered with no_answer",
    )
    p.add_argument(
        "--ring-s",
        type=int,
        default=20,
        metavar="S",
        help="how long the switch rings the agent's phone, then the customer's, for a "
        "callback or click-to-dial (default 20; a dial the switch says nothing about "
        "is given up 5 s later)",
    )


def add_commands(sub: Any) -> None:
    """Add ``adapter kamailio|freeswitch|asterisk`` to the ``agner`` subcommands
    (an argparse subparsers object)."""
    ad = sub.add_parser(
        "adapter",
        help="connect a switch (Kamailio, FreeSWITCH, Asterisk) to agner serve",
        description="Run one telephony adapter until SIGTERM or SIGINT: it turns the "
        "switch's calls into agner's wire events (a switch session on --server) and "
        "agner's decisions into switch commands, reconnects both links with backoff and "
        "reconciles the calls when either comes back. It prints one line once started; "
        "its log goes to stderr. docs/ADAPTERS.md describes each switch's side.",
    )
    ad_sub = ad.add_subparsers(dest="switch", metavar="SWITCH", required=True)

    kam = ad_sub.add_parser(
        "kamailio",
        help="SIP through Kamailio 5.6 running adapters/kamailio.cfg (evapi)",
        description="Connect to the evapi socket of Kamailio running adapters/kamailio.cfg "
        "(python -c 'import agner.adapters.kamailio as k; print(k.CONFIG)' prints its "
        "path). Every INVITE is a contact for the queue named by its Request-URI user; "
        "agner's choice of agent is rung at the agent's SIP address. Callbacks and "
        "click-to-dial ring the agent's phone, then REFER it to the customer.",
    )
    kam.add_argument(
        "--evapi",
        required=True,
        metavar="HOST:PORT",
        help="Kamailio's evapi address (its EVAPI_ADDR)",
    )
    _common(kam, "SIP_URI", "SIP address")
    kam.add_argument(
        "--agent-uri",
        metavar="TEMPLATE",
        help="the SIP address of agents without --agent, {agent} replaced by the name "
        "(e.g. 'sip:{agent}@10.0.0.20')",
    )
    kam.add_argument(
        "--dial-uri",
        metavar="TEMPLATE",
        help="where a callback or click-to-dial calls the customer, {number} replaced by "
        "the number (e.g. 'sip:{number}@gw.example.net'); without it only numbers that "
        "are SIP URIs can be dialed",
    )
    kam.add_argument(
        "--ring-ms",
        type=int,
        default=12_000,
        metavar="MS",
        help="how long an agent's phone rings before it counts as not answering "
        "(default 12000; keep it below the server's ring_timeout_s)",
    )
    kam.add_argument(
        "--ring-every",
        type=float,
        default=5.0,
        metavar="S",
        help="a waiting caller hears a 180 Ringing every S seconds (default 5)",
    )
    kam.set_defaults(func=_run, build=_kamailio)

    fs = ad_sub.add_parser(
        "freeswitch",
        help="FreeSWITCH through its inbound event socket",
        description="Connect to FreeSWITCH's event socket (mod_event_socket). Calls the "
        "dialplan parks with agner_queue set are contacts; agner's agent is bridged with "
        "the agent's dial string. Callbacks and click-to-dial are placed with bgapi "
        "originate: the agent's phone, then --dial.",
    )
    fs.add_argument(
        "--esl",
        default="127.0.0.1:8021",
        metavar="HOST:PORT",
        help="the event socket's address (default 127.0.0.1:8021)",
    )
    fs.add_argument(
        "--password",
        help="the event socket's password (default: the environment variable AGNER_ESL_PASSWORD)",
    )
    _common(fs, "DIAL", "bridge dial string (user/1001, sofia/...)")
    _dial_options(fs, "sofia/gateway/gw/{number}")
    fs.set_defaults(func=_run, build=_freeswitch)

    ast = ad_sub.add_parser(
        "asterisk",
        help="Asterisk through its manager interface (AMI)",
        description="Log in to Asterisk's manager interface. Callers the dialplan hands "
        "over with UserEvent AgnerArrived are contacts; agner's agent is dialed by a "
        "Redirect to --context with the agent's dial string. Callbacks and click-to-dial "
        "are placed with Originate: the agent's phone, then Dial() of --dial.",
    )
    ast.add_argument(
        "--ami",
        default="127.0.0.1:5038",
        metavar="HOST:PORT",
        help="the manager interface's address (default 127.0.0.1:5038)",
    )
    ast.add_argument("--username", required=True, help="the manager user (manager.conf)")
    ast.add_argument(
        "--secret",
        help="its secret (default: the environment variable AGNER_AMI_SECRET)",
    )
    ast.add_argument(
        "--context",
        default="agner-agents",
        help="the dialplan context that dials ${AGNER_DIAL} (default agner-agents)",
    )
    _common(ast, "DIAL", "Dial() string (PJSIP/1001, ...)")
    _dial_options(ast, "PJSIP/{number}@trunk")
    ast.set_defaults(func=_run, build=_asterisk)
