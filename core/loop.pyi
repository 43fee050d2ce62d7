from collections.abc import Callable, Sequence

import numpy as np

from agner.core.router import Router

DIST_KINDS: dict[str, int]
RECORD_DTYPE: np.dtype[np.void]
OUTCOMES: tuple[str, ...]

# (kind, p0, p1, samples): see sim/engine.py's Dist.spec
DistSpec = tuple[str, float, float, np.ndarray | None]

class EventLoop:
    arrivals: int
    events: int
    def __init__(
        self,
        router: Router,
        rates: Sequence[float | Sequence[float]],
        handle: Sequence[DistSpec],
        patience: Sequence[DistSpec],
        thresholds_us: Sequence[int],
        seed: int,
        warmup_us: int,
        interval_us: int = 0,
        shifts: Sequence[tuple[int, int, int]] = (),
        records: Callable[[np.ndarray], None] | None = None,
        chains: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
    ) -> None: ...
    def held_us(self, agents: Sequence[int], now: int) -> int: ...
    @property
    def n_intervals(self) -> int: ...
    def run(self, max_arrivals: int, until_us: int) -> int: ...
    def queue_counts(self, q: int, interval: int = -1) -> dict[str, int | float]: ...
