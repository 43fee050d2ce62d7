"""What a Python decision hook costs per routing decision (Router.set_decision_hook).

One queue, `--agents` agents, a contact cycle through the Python API (arrive, the
offer, accept, complete): the same cycle with no hook, with a hook that answers
the first candidate, and with a hook that scans every candidate (a custom
"pick by score" over all idle agents). Reported in one run, as ratios to the run
with no hook.

    python bench/hook_cost.py [--agents N] [--contacts N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from agner import HookContact, Router


def cycle(agents: int, contacts: int, hook: Callable[[HookContact], int] | None) -> float:
    """Seconds for `contacts` cycles, every agent READY between them."""
    r = Router(seed=1)
    q = r.add_queue(ring_timeout_us=0)
    ids = [r.add_agent({}) for _ in range(agents)]
    for a in ids:
        r.login(a, 0)
        r.set_ready(a, 0)
    if hook is not None:
        r.set_decision_hook(q, hook, budget_us=1_000_000)
    t = 1
    start = time.perf_counter()
    for _ in range(contacts):
        c = r.arrive(q, t)
        (d,) = r.take_decisions()
        r.accept(d.agent, c, t)
        t += 1
        r.complete(d.agent, c, t)
        r.take_decisions()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--contacts", type=int, default=50_000)
    args = ap.parse_args(argv)

    def first(info: HookContact) -> int:
        return info.candidates[0]

    def best(info: HookContact) -> int:
        return max(info.candidates, key=lambda a: (a * 7919) % 1009)

    hooks: dict[str, Any] = {"no hook": None, "hook: first candidate": first}
    hooks["hook: scan every candidate"] = best
    base = None
    print(f"{args.agents} agents, {args.contacts:,} contacts, one run")
    for name, hook in hooks.items():
        s = cycle(args.agents, args.contacts, hook)
        per = s / args.contacts * 1e6
        base = base or per
        print(f"  {name:28} {per:8.2f} us per contact cycle   x{per / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
