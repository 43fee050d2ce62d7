"""The ``agner`` command line."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from agner.demo import format_demo, run_demo

    if args.hours <= 0:
        print("agner demo: --hours must be > 0", file=sys.stderr)
        return 2
    res = run_demo(duration_s=args.hours * 3600, seed=args.seed)
    if args.json:
        out = {
            "duration_s": res.duration_s,
            "queues": {
                q.name: st._asdict() for q, st in zip(res.center.queues, res.queues, strict=True)
            },
            "occupancy": res.occupancy,
            "agents_by_state": res.agents_by_state,
            "events": res.events,
            "decisions": res.decisions,
            "ring_no_answer": res.rona,
        }
        print(json.dumps(out, indent=2))
    else:
        print(format_demo(res))
    return 0


def _bench_router(args: argparse.Namespace) -> int:
    from agner.sim.routerbench import run_benchmark

    if args.agents < 1:
        print("agner bench router: --agents must be >= 1", file=sys.stderr)
        return 2
    for name in ("arrivals", "python_arrivals", "reference_arrivals"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"agner bench router: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.load is not None and not 0 < args.load <= 100:
        print("agner bench router: --load must be in (0, 100]", file=sys.stderr)
        return 2
    res = run_benchmark(
        args.agents,
        arrivals=args.arrivals,
        python_arrivals=args.python_arrivals,
        reference_arrivals=args.reference_arrivals,
        seed=args.seed,
        reference=not args.no_reference,
        extended=args.config == "extended",
        load=args.load,
    )
    if args.json:
        print(json.dumps(res))
    else:
        ref = res["reference"]
        print(
            f"agner bench router ({res['config']}): {res['agents']} agents, "
            f"{res['skills']} skills, {res['queues']} queues ({res['machine']['cpu']})"
        )
        print(
            f"  load {res['load']:g} arrivals per agent per handle time: agents "
            f"{100 * res['occupancy']:.1f}% occupied (C-level run)"
        )
        print(
            f"  C-level API : {res['events_per_second']:>12,.0f} events/s "
            f"{res['ns_per_event']:>8.1f} ns/event  ({res['events']:,} events)"
        )
        py = res["python"]
        print(
            f"  Python API  : {py['events_per_second']:>12,.0f} events/s "
            f"{py['ns_per_event']:>8.1f} ns/event  ({py['events']:,} events)"
        )
        if "events_per_second" in ref:
            print(
                f"  reference   : {ref['events_per_second']:>12,.0f} events/s "
                f"{ref['ns_per_event']:>8.1f} ns/event  ({ref['events']:,} events)"
            )
            print(f"  C-level / reference: {res['c_over_reference']:.0f}x")
        else:
            print(f"  reference   : {ref['error']}")
        print(f"  C-level / Python API: {res['c_over_python']:.1f}x")
        print(f"  all drivers made the same decisions: {'yes' if res['agree'] else 'NO'}")
    return 0 if res["agree"] else 1


# --------------------------------------------------------------------------
# agner erlang b|c|a


class _Usage(ValueError):
    """Bad command-line input: reported on stderr, exit status 2."""


def _duration(text: str, option: str) -> float:
    """Seconds from '30m', '1h', '900s', '0.5h' or a bare number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?\s*", text)
    if not m:
        raise _Usage(f"{option} must be a duration such as 30m, 1h or 900s, not {text!r}")
    value = (
        float(m.group(1)) * {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
    )
    if value <= 0:
        raise _Usage(f"{option} must be > 0")
    return value


def _share(text: str, option: str) -> float:
    """A fraction from '0.01' or '1%', strictly between 0 and 1."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise _Usage(
            f"{option} must be a fraction such as 0.05 or a percentage such as 5%"
        ) from None
    if not 0 < value < 1:
        raise _Usage(f"{option} must be strictly between 0 and 1 (or 0% and 100%), not {text}")
    return value


def _sl_target(text: str) -> tuple[float, float]:
    """'80/20' -> (0.8, 20.0): percent answered within seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*/\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*", text)
    if not m:
        raise _Usage(f"--target must be PERCENT/SECONDS such as 80/20, not {text!r}")
    pct, seconds = float(m.group(1)), float(m.group(2))
    if not 0 < pct < 100:
        raise _Usage(f"--target: the percentage must be strictly between 0 and 100, not {pct:g}")
    return pct / 100, seconds


def _positive(value: float | None, option: str) -> float | None:
    if value is not None and not 0 < value < float("inf"):
        raise _Usage(f"{option} must be a finite number > 0")
    return value


def _erlang_load(args: argparse.Namespace, *, aht_required: bool) -> tuple[float, dict[str, Any]]:
    """The offered load in Erlang, from --load or --calls/--interval/--aht."""
    aht = _positive(args.aht, "--aht")
    if aht_required and aht is None:
        raise _Usage("--aht (mean handle time, seconds) is needed")
    if (args.load is None) == (args.calls is None):
        raise _Usage("give the load as --load ERLANGS or as --calls N [--interval 30m] --aht S")
    if args.load is not None:
        load = _positive(args.load, "--load")
        assert load is not None
        return load, {"load_erlangs": load}
    calls = _positive(args.calls, "--calls")
    interval = _duration(args.interval, "--interval")
    if aht is None:
        raise _Usage("--calls needs --aht (mean handle time, seconds) to make a load")
    assert calls is not None
    return calls * aht / interval, {"calls": calls, "interval_s": interval}


def _describe_load(load: float, given: dict[str, Any], aht: float | None) -> str:
    text = f"{load:g} Erlang offered"
    if "calls" in given:
        text += f" ({given['calls']:g} calls per {_seconds_text(given['interval_s'])}"
        text += f", AHT {aht:g} s)" if aht is not None else ")"
    elif aht is not None:
        text += f", AHT {aht:g} s"
    return text


def _seconds_text(s: float) -> str:
    if s % 3600 == 0:
        return f"{s / 3600:g}h"
    if s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:g}s"


def _json_out(obj: dict[str, Any]) -> None:
    """One JSON object; infinities and NaN (unstable queues) become null."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    print(json.dumps(clean(obj), allow_nan=False))


def _pct(p: float) -> str:
    return f"{100 * p:.2f}%"


def _erlang_run(args: argparse.Namespace, name: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except ValueError as exc:  # _Usage, or the calculators' own checks
        print(f"agner erlang {name}: {exc}", file=sys.stderr)
        return 2


def _erlang_b(args: argparse.Namespace) -> int:
    from agner.sim import erlang

    def body() -> int:
        if args.lines is not None and args.lines < 1:
            raise _Usage("--lines must be >= 1")
        blocking = None if args.blocking is None else _share(args.blocking, "--blocking")
        has_load = args.load is not None or args.calls is not None
        if [args.lines is not None, has_load, blocking is not None].count(True) != 2:
            raise _Usage(
                "give two of --lines, the load (--load, or --calls with --aht) and "
                "--blocking; the third is computed"
            )
        aht = _positive(args.aht, "--aht")
        out: dict[str, Any] = {"model": "B"}
        if blocking is None:  # lines and load -> blocking
            load, given = _erlang_load(args, aht_required=False)
            b = erlang.erlang_b(args.lines, load)
            out |= given | {"load_erlangs": load, "lines": args.lines, "blocking": b}
            out["carried_erlangs"] = load * (1 - b)
            text = [
                f"Erlang B: {_describe_load(load, given, aht)} to {args.lines} lines",
                f"  blocking   {b:.7f}   ({_pct(b)} of calls find every line busy)",
                f"  carried    {load * (1 - b):.4f} Erlang",
            ]
        elif args.lines is None:  # load and blocking -> lines
            load, given = _erlang_load(args, aht_required=False)
            n = erlang.staff_erlang_b(load, blocking)
            b = erlang.erlang_b(n, load)
            out |= given | {"load_erlangs": load, "target_blocking": blocking}
            out |= {"lines": n, "blocking": b}
            text = [
                f"Erlang B: {_describe_load(load, given, aht)}, at most {_pct(blocking)} blocked",
                f"  fewest lines   {n}   (blocking {b:.7f} = {_pct(b)})",
            ]
        else:  # lines and blocking -> load
            load = erlang.erlang_b_load(args.lines, blocking)
            out |= {"lines": args.lines, "blocking": blocking, "load_erlangs": load}
            text = [
                f"Erlang B: {args.lines} lines at {_pct(blocking)} blocking",
                f"  most load   {load:.4f} Erlang",
            ]
            if aht is not None:
                interval = _duration(args.interval, "--interval")
                calls = load * interval / aht
                out |= {"aht_s": aht, "interval_s": interval, "calls": calls}
                text.append(
                    f"  most calls  {calls:.1f} per {_seconds_text(interval)} at AHT {aht:g} s"
                )
        if aht is not None:
            out["aht_s"] = aht
        if args.json:
            _json_out(out)
        else:
            print("\n".join(text))
        return 0

    return _erlang_run(args, "b", body)


def _staffing_request(
    args: argparse.Namespace, *, extra: str, extra_value: float | None
) -> tuple[tuple[float, float] | None, float]:
    """The --target service level (if any) and the threshold to report against."""
    target = None if args.target is None else _sl_target(args.target)
    wants_target = target is not None or extra_value is not None
    if args.agents is not None and wants_target:
        raise _Usage(f"give --agents N or a target (--target, {extra}), not both")
    if args.agents is None and not wants_target:
        raise _Usage(f"give --agents N, or a target (--target 80/20 or {extra}) to staff for")
    if args.agents is not None and args.agents < 1:
        raise _Usage("--agents must be >= 1")
    if args.threshold is not None and not 0 <= args.threshold < float("inf"):
        raise _Usage("--threshold must be >= 0 seconds")
    threshold = 20.0 if args.threshold is None else args.threshold
    if target is not None:
        if args.threshold is not None and args.threshold != target[1]:
            raise _Usage(f"--threshold {args.threshold:g} differs from --target {args.target}")
        threshold = target[1]
    return target, threshold


def _target_text(target: tuple[float, float] | None, more: list[str]) -> str:
    parts = [] if target is None else [f"{100 * target[0]:g}% within {target[1]:g} s"]
    return " and ".join(parts + more)


def _erlang_c(args: argparse.Namespace) -> int:
    from agner.sim import erlang

    def body() -> int:
        load, given = _erlang_load(args, aht_required=True)
        max_asa = _positive(args.max_asa, "--max-asa")
        target, threshold = _staffing_request(args, extra="--max-asa", extra_value=max_asa)
        aht = args.aht
        out: dict[str, Any] = {"model": "C"} | given | {"load_erlangs": load, "aht_s": aht}
        text = [f"Erlang C (M/M/n): {_describe_load(load, given, aht)}"]
        if args.agents is not None:
            agents = args.agents
            text[0] += f", {agents} agents"
        else:
            sl = None if target is None else target[0]
            agents = erlang.staff_erlang_c(
                load, aht, service_level=sl, threshold_s=threshold, asa_s=max_asa
            )
            rule = erlang.square_root_staffing(
                load, aht, service_level=sl, threshold_s=threshold, asa_s=max_asa
            )
            want = _target_text(target, [] if max_asa is None else [f"ASA <= {max_asa:g} s"])
            out["target"] = {"service_level": sl, "threshold_s": threshold, "asa_s": max_asa}
            out |= {"square_root_agents": rule.agents, "beta": rule.beta}
            text.append(
                f"  fewest agents for {want}: {agents}   "
                f"(square-root rule: {rule.agents}, beta {rule.beta:.3f})"
            )
            text.append(f"  with {agents} agents:")
        m = erlang.erlang_c_metrics(agents, load, aht, threshold)
        out |= {"agents": agents, "threshold_s": threshold} | m._asdict()
        out["mean_wait_s"] = m.asa_s
        if load >= agents:
            text.append("  unstable: the load reaches the agents; the queue grows without bound")
        text += [
            f"  P(wait)         {m.p_wait:.7f}   ({_pct(m.p_wait)} of calls wait)",
            f"  service level   {m.service_level:.7f}   "
            f"({_pct(m.service_level)} answered within {threshold:g} s)",
            f"  ASA             {m.asa_s:.4f} s   (mean wait of all calls; "
            f"{m.asa_waiting_s:.4f} s for those that wait)",
            f"  occupancy       {m.occupancy:.7f}   ({_pct(m.occupancy)})",
        ]
        if args.json:
            _json_out(out)
        else:
            print("\n".join(text))
        return 0

    return _erlang_run(args, "c", body)


def _erlang_a(args: argparse.Namespace) -> int:
    from agner.sim import erlang

    def body() -> int:
        load, given = _erlang_load(args, aht_required=True)
        patience = _positive(args.patience, "--patience")
        if patience is None:
            raise _Usage("--patience (mean patience, seconds) is needed")
        abandon = None if args.max_abandon is None else _share(args.max_abandon, "--max-abandon")
        target, threshold = _staffing_request(args, extra="--max-abandon", extra_value=abandon)
        aht = args.aht
        out: dict[str, Any] = {"model": "A"} | given
        out |= {"load_erlangs": load, "aht_s": aht, "patience_s": patience}
        head = f"Erlang A (M/M/n+M): {_describe_load(load, given, aht)}, patience {patience:g} s"
        text = [head]
        if args.agents is not None:
            agents = args.agents
            text[0] += f", {agents} agents"
        else:
            sl = None if target is None else target[0]
            agents = erlang.staff_erlang_a(
                load,
                aht,
                patience,
                service_level=sl,
                threshold_s=threshold,
                abandon=abandon,
                definition=args.target_of,
            )
            rule = erlang.square_root_staffing(
                load,
                aht,
                service_level=sl,
                threshold_s=threshold,
                patience_s=patience,
                abandon=abandon,
            )
            more = [] if abandon is None else [f"at most {_pct(abandon)} abandoned"]
            want = _target_text(target, more)
            if target is not None:
                want = want.replace(" s", f" s (of {args.target_of} calls)", 1)
            out["target"] = {
                "service_level": sl,
                "threshold_s": threshold,
                "of": args.target_of,
                "abandon": abandon,
            }
            out |= {"square_root_agents": rule.agents, "beta": rule.beta}
            text.append(
                f"  fewest agents for {want}: {agents}   "
                f"(square-root rule: {rule.agents}, beta {rule.beta:.3f})"
            )
            text.append(f"  with {agents} agents:")
        m = erlang.erlang_a(agents, load, aht, patience, threshold)
        out |= {"agents": agents, "threshold_s": threshold} | m._asdict()
        text += [
            f"  P(wait)         {m.p_wait:.7f}   ({_pct(m.p_wait)} of calls wait)",
            f"  abandoned       {m.p_abandon:.7f}   ({_pct(m.p_abandon)} of offered calls)",
            f"  service level   {m.service_level:.7f}   ({_pct(m.service_level)} of offered "
            f"answered within {threshold:g} s; {_pct(m.service_level_answered)} of answered)",
            f"  ASA             {m.asa_s:.4f} s   (mean wait of answered calls)",
            f"  mean wait       {m.mean_wait_s:.4f} s   (all offered calls, abandoned included)",
            f"  occupancy       {m.occupancy:.7f}   ({_pct(m.occupancy)})",
        ]
        if args.json:
            _json_out(out)
        else:
            print("\n".join(text))
        return 0

    return _erlang_run(args, "a", body)


def _simulate(args: argparse.Namespace) -> int:
    from agner.sim.replicate import format_report, simulate_replications
    from agner.sim.scenario import ScenarioError, load_scenario

    problems = []
    if args.calls is not None and args.calls < 1:
        problems.append("--calls must be >= 1")
    if args.duration is not None and not args.duration > 0:
        problems.append("--duration must be > 0")
    if args.replications is not None and args.replications < 1:
        problems.append("--replications must be >= 1")
    if args.workers is not None and args.workers < 1:
        problems.append("--workers must be >= 1")
    if problems:
        print("agner simulate: " + "; ".join(problems), file=sys.stderr)
        return 2
    show = sys.stderr.isatty() and not args.json

    def progress(share: float) -> None:
        if show:
            width = 40
            filled = round(share * width)
            bar = "#" * filled + "-" * (width - filled)
            print(
                f"\r  [{bar}] {100 * share:5.1f}%",
                end="" if share < 1 else "\n",
                file=sys.stderr,
                flush=True,
            )

    try:
        sc = load_scenario(args.scenario)
        report = simulate_replications(
            sc,
            replications=sc.replications if args.replications is None else args.replications,
            calls=args.calls,
            duration_s=args.duration,
            seed=args.seed,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=progress,
            records=args.records,
            engine=args.engine,
        )
    except (ScenarioError, ValueError) as exc:
        print(f"agner simulate: {exc}", file=sys.stderr)
        return 2
    targets = {q.name: q.service_level.target for q in sc.queues}
    try:
        if args.plot:
            from agner.sim.plots import save_plot

            save_plot(report, args.plot, targets)
        if args.report:
            from agner.sim.plots import save_html_report

            save_html_report(report, args.report, f"agner simulate {args.scenario}", targets)
    except ValueError as exc:
        print(f"agner simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def _staff(args: argparse.Namespace) -> int:
    from agner.sim.scenario import ScenarioError, load_scenario
    from agner.sim.staff import parse_target, staff_scenario

    try:
        target = parse_target(args.target)
        if args.replications < 1 or args.calls < 100:
            raise ValueError("--replications must be >= 1 and --calls >= 100")
        report = staff_scenario(
            load_scenario(args.scenario),
            target,
            replications=args.replications,
            calls=args.calls,
            workers=args.workers,
            scheduler=args.scheduler,
        )
    except (ScenarioError, ValueError) as exc:
        print(f"agner staff: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    t = report["target"]
    print(
        f"fewest agents for {100 * t['service_level']:g}% answered within "
        f"{t['threshold_s']:g} s (of offered), per interval"
    )
    print(f"{'start':>5}  {'Erlang':>6}  {'agents':>6}  {'how':<10}  groups")
    for row in report["intervals"]:
        h, m = divmod(int(row["start_s"]) // 60, 60)
        groups = ", ".join(f"{k} {v}" for k, v in row["groups"].items())
        print(
            f"{h:02d}:{m:02d}  {row['erlang_total']:>6}  {row['agents']:>6}  "
            f"{row['confirmed_by']:<10}  {groups}"
        )
    return 0


#: Where `agner serve` listens when given neither --tcp nor --http.
DEFAULT_TCP, DEFAULT_HTTP = "127.0.0.1:7100", "127.0.0.1:7180"


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agner.config import ConfigFileError, load_server_config
    from agner.journal import JournalError
    from agner.server import parse_address, run

    try:
        cfg = load_server_config(args.config)
        for option in (args.http, args.tcp):
            if option is not None:
                parse_address(option)
    except (ConfigFileError, ValueError) as exc:
        print(f"agner serve: {exc}", file=sys.stderr)
        return 2
    if args.http is None and args.tcp is None:  # the defaults: loopback only
        args.tcp, args.http = DEFAULT_TCP, DEFAULT_HTTP
    try:
        run(cfg, http=args.http, tcp=args.tcp, data_dir=Path(args.data), store_url=args.store)
    except JournalError as exc:
        print(f"agner serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _load(args: argparse.Namespace) -> int:
    from agner.load import LoadError, run_load

    try:
        res = run_load(
            args.config,
            args.server,
            rate=args.rate,
            duration_s=args.duration,
            handle_s=args.handle,
            agents=args.agents,
        )
    except LoadError as exc:
        print(f"agner load: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"agner load: {res['arrivals']:,} calls at {res['rate']:g}/s for "
            f"{res['duration_s']:g} s, {res['agents']:,} agents"
        )
        print(
            f"  events      {res['events']:>10,}  ({res['events_per_second']:,.0f} events/s, "
            f"{res['errors']} errors)"
        )
        print(
            f"  assigned    {res['assigned']:>10,}  arrival to assignment: "
            f"p50 {res['p50_ms']:.3f} ms, p90 {res['p90_ms']:.3f} ms, "
            f"p99 {res['p99_ms']:.3f} ms, max {res['max_ms']:.3f} ms"
        )
    return 0 if res["errors"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agner",
        description="agner: a contact-center routing core (ACD), verified by simulation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="simulate an hour of a small built-in center through the router",
        description="Route one simulated hour of a small built-in center (4 queues, "
        "56 agents in 4 groups with overlapping skills, random arrivals, talk times and "
        "patience, some ring-no-answer) through the real routing core, and print each "
        "queue's service level, ASA and abandonment and each group's occupancy.",
    )
    demo.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="measure the routing core")
    bench_sub = bench.add_subparsers(dest="what", metavar="WHAT")
    bench_sub.required = True
    router = bench_sub.add_parser(
        "router",
        help="events per second of the router: C-level API, Python API, reference",
        description="Drive one workload (50 skills, agents with 1-8 skills, 200 queues "
        "using every strategy, 2% ring-no-answer, abandonment, arrivals that keep the "
        "agents about 94% occupied) through the C-level API, the Python API and the "
        "pure-Python reference router, in one run, and report events per second and ns "
        "per event for each, and the agents' occupancy in the C-level run. Every router "
        "call is an event. Exits 1 if the drivers' decisions differ.",
    )
    router.add_argument("--agents", type=int, default=10_000, help="agents (default 10000)")
    router.add_argument(
        "--arrivals", type=int, help="arrivals for the C-level API (default max(1e6, 200 x agents))"
    )
    router.add_argument(
        "--python-arrivals", type=int, help="arrivals for the Python API (default a tenth)"
    )
    router.add_argument(
        "--reference-arrivals", type=int, help="arrivals for the reference (default a hundredth)"
    )
    router.add_argument("--no-reference", action="store_true", help="skip the reference")
    router.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    router.add_argument(
        "--config",
        choices=("basic", "extended"),
        default="basic",
        help="basic (default), or extended: the same center with requirement steps, "
        "priority aging, parallel offers on every third queue, a quarter of the agents "
        "multi-channel and chat and e-mail queues",
    )
    router.add_argument(
        "--load",
        type=float,
        help="arrivals per agent per handle time (default 0.95 basic, 1.2 extended: "
        "the same occupancy, as multi-channel agents hold several contacts)",
    )
    router.add_argument("--json", action="store_true", help="print one JSON object")
    router.set_defaults(func=_bench_router)

    erlang = sub.add_parser(
        "erlang",
        help="Erlang B, C and A calculators and staffing",
        description="Closed-form queueing for one queue of identical agents with random "
        "(Poisson) arrivals and exponential handle times: Erlang B (lines, no queue), "
        "Erlang C (callers wait as long as it takes) and Erlang A (callers hang up after "
        "an exponential patience). Formulas and methods: docs/ERLANG.md.",
    )
    erlang_sub = erlang.add_subparsers(dest="model", metavar="MODEL")
    erlang_sub.required = True

    def load_options(p: argparse.ArgumentParser, aht_help: str) -> None:
        p.add_argument("--load", type=float, metavar="ERLANGS", help="offered load in Erlang")
        p.add_argument(
            "--calls", type=float, metavar="N", help="calls offered per --interval (with --aht)"
        )
        p.add_argument(
            "--interval",
            default="1h",
            metavar="DURATION",
            help="length of the --calls interval: 30m, 1h, 900s or seconds (default 1h)",
        )
        p.add_argument("--aht", type=float, metavar="SECONDS", help=aht_help)
        p.add_argument("--json", action="store_true", help="print one JSON object")

    b = erlang_sub.add_parser(
        "b",
        help="lines and blocking, no queue (M/M/n/n)",
        description="Erlang B: calls that find every line busy are lost. Give two of "
        "--lines, the load and --blocking; the third is computed: the blocking, the "
        "fewest lines, or the most load (and, with --aht, calls per --interval).",
    )
    b.add_argument("--lines", type=int, metavar="N", help="lines (trunks, servers)")
    b.add_argument("--blocking", metavar="SHARE", help="share of calls blocked: 0.01 or 1%%")
    load_options(b, "mean holding time, seconds (with --calls)")
    b.set_defaults(func=_erlang_b)

    def queue_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--agents", type=int, metavar="N", help="agents to evaluate")
        p.add_argument(
            "--threshold",
            type=float,
            metavar="SECONDS",
            help="service-level threshold (default 20, or the --target's)",
        )
        p.add_argument(
            "--target",
            metavar="PCT/SECONDS",
            help="find the fewest agents answering PCT%% of calls within SECONDS, e.g. 80/20",
        )

    c = erlang_sub.add_parser(
        "c",
        help="waiting callers who never hang up (M/M/n)",
        description="Erlang C: P(wait), service level, ASA and occupancy for --agents; or "
        "the fewest agents meeting --target and/or --max-asa, with the square-root "
        "rule's estimate beside it.",
    )
    queue_options(c)
    c.add_argument(
        "--max-asa",
        type=float,
        metavar="SECONDS",
        help="find the fewest agents with ASA at most this",
    )
    load_options(c, "mean handle time, seconds (required)")
    c.set_defaults(func=_erlang_c)

    a = erlang_sub.add_parser(
        "a",
        help="waiting callers who hang up after a while (M/M/n+M)",
        description="Erlang A: P(wait), abandonment, service level (over offered and over "
        "answered calls), ASA, mean wait and occupancy for --agents; or the fewest agents "
        "meeting --target and/or --max-abandon, with the square-root rule's estimate "
        "beside it.",
    )
    queue_options(a)
    a.add_argument(
        "--target-of",
        choices=("offered", "answered"),
        default="offered",
        help="calls the --target share is taken of (default offered: abandons count against)",
    )
    a.add_argument(
        "--max-abandon",
        metavar="SHARE",
        help="find the fewest agents with at most this share abandoned: 0.05 or 5%%",
    )
    a.add_argument(
        "--patience", type=float, metavar="SECONDS", help="mean patience, seconds (required)"
    )
    load_options(a, "mean handle time, seconds (required)")
    a.set_defaults(func=_erlang_a)
    sim = sub.add_parser(
        "simulate",
        help="simulate a scenario file through the real router",
        description="Route a scenario's load (a TOML file: queues, agent groups, arrivals; "
        "see examples/ and docs/SIMULATOR.md) through the routing core, on the fast Cython "
        "event loop or (--engine simpy) in a SimPy model driving the same router, and "
        "print, per queue and overall, offered, answered and abandoned contacts, P(wait), "
        "P(abandon), ASA (mean wait of answered), mean wait (answered and abandoned), "
        "service level (answered within the queue's threshold / offered, and / answered) "
        "and occupancy (per agent group, and per queue: of the agents who can serve it; a "
        "multi-channel agent is occupied while it holds one contact or more), and per "
        "agent group the mean contacts an agent holds at once. "
        "With --replications R > 1 every figure is a mean with a 95% confidence "
        "half-width (_ci95). Exits 2 on a scenario that makes no sense, naming the field.",
    )
    sim.add_argument("scenario", help="the scenario file (TOML)")
    stop = sim.add_mutually_exclusive_group()
    stop.add_argument("--calls", type=int, help="stop after N calls past the warm-up")
    stop.add_argument(
        "--duration", type=float, metavar="S", help="stop at S simulated seconds (warm-up included)"
    )
    sim.add_argument(
        "--replications",
        type=int,
        metavar="R",
        help="independent runs, seeds seed..seed+R-1 (default: the scenario's, or 1)",
    )
    sim.add_argument("--seed", type=int, help="first seed (default: the scenario's)")
    sim.add_argument(
        "--workers",
        type=int,
        metavar="W",
        help="processes for the replications (default: one per CPU)",
    )
    sim.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the replications on this Dask cluster (needs distributed)",
    )
    sim.add_argument(
        "--records",
        metavar="FILE.csv",
        help="write one row per contact (queue, times, wait, talk, agent, outcome) as the "
        "run goes; one replication only",
    )
    sim.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the service level (per interval, or per queue) with targets",
    )
    sim.add_argument(
        "--report", metavar="FILE.html", help="write a self-contained HTML page of the results"
    )
    sim.add_argument(
        "--engine",
        choices=("fast", "simpy"),
        default="fast",
        help="fast: the Cython event loop (default); simpy: the SimPy model driving the "
        "same router (slower, an independent check; no --records)",
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=_simulate)
    staff = sub.add_parser(
        "staff",
        help="fewest agents per interval for a service-level target",
        description="For each interval of a scenario (or its steady state), the fewest "
        "agents meeting --target (answered within T / offered): Erlang C or A per queue "
        "(A when callers have a patience; its mean is used); for a multi-skill center the "
        "agent groups are scaled together in the scenario's proportions and the smallest "
        "total meeting the target on every queue is found by simulation.",
    )
    staff.add_argument("scenario", help="the scenario file (TOML)")
    staff.add_argument("--target", required=True, help="e.g. 80/20: 80%% within 20 s")
    staff.add_argument(
        "--replications",
        type=int,
        default=3,
        help="simulations per candidate, multi-skill only (default 3)",
    )
    staff.add_argument(
        "--calls",
        type=int,
        default=20_000,
        help="calls per simulation, multi-skill only (default 20000)",
    )
    staff.add_argument(
        "--workers",
        type=int,
        metavar="W",
        help="processes for the simulations (default: one per CPU)",
    )
    staff.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="run the simulations on this Dask cluster (needs distributed)",
    )
    staff.add_argument("--json", action="store_true", help="print one JSON object")
    staff.set_defaults(func=_staff)

    serve = sub.add_parser(
        "serve",
        help="run the live ACD server",
        description="Route live contacts: switches, agent desktops and CRM applications "
        "talk to it over the wire protocol (docs/PROTOCOL.md): MessagePack frames on --tcp, "
        "WebSocket (JSON) and HTTP (/healthz, /v1/queues, /v1/agents, /metrics) on --http. "
        "Every input is journaled under --data before it is acted on; a restart replays "
        "the journal. CONFIG is the routing configuration plus tenants and agents "
        "(examples/center.toml), and the switch adapters the server runs in its own process "
        "([[adapters]]: a Kamailio adapter, docs/ADAPTERS.md).",
    )
    serve.add_argument("config", help="the server configuration (TOML)")
    serve.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="HTTP and WebSocket address (default, when neither is given: 127.0.0.1:7180)",
    )
    serve.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="MessagePack transport address (default, when neither is given: 127.0.0.1:7100)",
    )
    serve.add_argument(
        "--data",
        default=".",
        metavar="DIR",
        help="the journal (journal-*.bin, snapshot-*.bin) and the default CRM store "
        "(crm.db) go here "
        "(default: the working directory)",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="the CRM store: sqlite:///PATH or postgresql://... (default: SQLite DIR/crm.db)",
    )
    serve.set_defaults(func=_serve)

    load = sub.add_parser(
        "load",
        help="drive a running server with simulated callers and agents",
        description="Log in every agent of CONFIG (the server's configuration) over the "
        "--server's TCP transport, offer Poisson arrivals at --rate spread over its queues, "
        "answer every offer at once and hang up after an exponential handle time, and "
        "report events per second and the latency from arrival to assignment (the "
        "connect event) in percentiles. Exits 1 if the server refused anything.",
    )
    load.add_argument("config", help="the server configuration (TOML) the server runs")
    load.add_argument("--server", required=True, metavar="HOST:PORT", help="its --tcp address")
    load.add_argument("--rate", type=float, default=1000.0, help="arrivals per second (1000)")
    load.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    load.add_argument(
        "--handle",
        type=float,
        metavar="S",
        help="mean handle time, seconds (default: 80%% occupancy of the agents)",
    )
    load.add_argument("--agents", type=int, metavar="N", help="use only the first N agents")
    load.add_argument("--json", action="store_true", help="print one JSON object")
    load.set_defaults(func=_load)
    from agner.crm.cli import add_commands as add_crm_commands  # report, crm import|lookup

    add_crm_commands(sub)
    from agner.adapters.cli import add_commands as add_adapter_commands  # adapter SWITCH

    add_adapter_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``agner`` command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except BrokenPipeError:  # e.g. `agner demo | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
