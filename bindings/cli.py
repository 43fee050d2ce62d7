"""The ``agner`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

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
    res = run_benchmark(
        args.agents,
        arrivals=args.arrivals,
        python_arrivals=args.python_arrivals,
        reference_arrivals=args.reference_arrivals,
        seed=args.seed,
        reference=not args.no_reference,
    )
    if args.json:
        print(json.dumps(res))
    else:
        ref = res["reference"]
        print(
            f"agner bench router: {res['agents']} agents, {res['skills']} skills, "
            f"{res['queues']} queues ({res['machine']['cpu']})"
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
        "using every strategy, 95%% load, 2%% ring-no-answer, abandonment) through the "
        "C-level API, the Python API and the pure-Python reference router, in one run, "
        "and report events per second and ns per event for each. Every router call is an "
        "event. Exits 1 if the drivers' decisions differ.",
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
    router.add_argument("--json", action="store_true", help="print one JSON object")
    router.set_defaults(func=_bench_router)
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
