"""Erlang B, C and A: the capacity planner's closed forms, exact and stable.

Everything here is a steady-state formula for one queue served by ``servers``
identical agents, with Poisson arrivals and exponential handle times:

- **Erlang B** (M/M/n/n): lines or trunks, no queue; a call that finds every
  line busy is lost (:func:`erlang_b`, its inverses :func:`erlang_b_load` and
  :func:`staff_erlang_b`).
- **Erlang C** (M/M/n, FIFO): callers wait as long as it takes
  (:func:`erlang_c`, :func:`service_level_c`, :func:`asa_c`,
  :func:`erlang_c_metrics`, :func:`staff_erlang_c`).
- **Erlang A** (M/M/n+M, FIFO, Palm's model): callers wait, but each hangs up
  after an exponential patience (:func:`erlang_a`, :func:`staff_erlang_a`).
- The **square-root staffing rule** n = R + beta * sqrt(R), with beta taken
  from the target through the Halfin-Whitt approximation (Erlang C) or its
  Garnett-Mandelbaum-Reiman extension (Erlang A): :func:`square_root_staffing`.

Units: the offered load is in Erlang (arrival rate x mean handle time, see
:func:`offered_load`); every time is in seconds; probabilities are fractions in
[0, 1], never percentages. Bad input raises ValueError naming the argument.

The formulas and their numerical methods are written down in docs/ERLANG.md.
The functions are exact to rounding (the many-server approximations serve only
as the staffing search's starting point) and stay finite and in range up to
tens of thousands of servers: Erlang B runs its classic recursion, switching to
logarithms only where the value would underflow; Erlang A sums its birth-death
chain's queue states in a window around their mode, in logarithms, so no term
overflows however large the load or the patience.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "ErlangA",
    "ErlangC",
    "SquareRootStaffing",
    "asa_c",
    "erlang_a",
    "erlang_b",
    "erlang_b_load",
    "erlang_c",
    "erlang_c_metrics",
    "offered_load",
    "service_level_c",
    "square_root_staffing",
    "staff_erlang_a",
    "staff_erlang_b",
    "staff_erlang_c",
]

_LOG_2PI = math.log(2.0 * math.pi)
# Queue states whose weight is below e**-60 of the largest one are left out of
# the Erlang A sums: even a million of them change nothing in double precision.
_CUT = 60.0


# --------------------------------------------------------------------------
# Input checks


def _count(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    try:
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be >= 0, not {n}")
    return int(n)


def _number(name: str, value: object) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}") from None
    if math.isnan(v):
        raise ValueError(f"{name} must be a number, not NaN")
    return v


def _nonneg(name: str, value: object) -> float:
    v = _number(name, value)
    if not 0.0 <= v < math.inf:
        raise ValueError(f"{name} must be finite and >= 0, not {v}")
    return v


def _positive(name: str, value: object, *, inf_ok: bool = False) -> float:
    v = _number(name, value)
    if not v > 0.0 or (v == math.inf and not inf_ok):
        raise ValueError(f"{name} must be {'' if inf_ok else 'finite and '}> 0, not {v}")
    return v


def _fraction(name: str, value: object) -> float:
    v = _number(name, value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, not {v}")
    return v


# --------------------------------------------------------------------------
# Erlang B


def offered_load(calls: float, interval_s: float, aht_s: float) -> float:
    """The offered load in Erlang of ``calls`` arriving per ``interval_s`` seconds.

    A = calls x aht_s / interval_s: 100 calls per 30 minutes with a 180 s mean
    handle time offer 10 Erlang. Raises ValueError for negative calls or a
    non-positive interval or handle time.
    """
    c = _nonneg("calls", calls)
    t = _positive("interval_s", interval_s)
    h = _positive("aht_s", aht_s)
    return c * h / t


def _log_erlang_b(n: int, load: float) -> float:
    """log B(n, load) for valid input; -inf when the load is 0 and n > 0."""
    if n == 0:
        return 0.0
    if load == 0.0:
        return -math.inf
    # B(k) = A B(k-1) / (k + A B(k-1)): every step is a ratio of positive
    # numbers, so rounding errors do not grow. Only where B is about to
    # underflow does the rest run in logarithms.
    b = 1.0
    for k in range(1, n + 1):
        ab = load * b
        if ab < 1e-280:
            lb, la = math.log(b), math.log(load)
            for kk in range(k, n + 1):
                lab = la + lb
                lb = lab - math.log(kk + math.exp(lab))
            return lb
        b = ab / (k + ab)
    return math.log(b)


def erlang_b(servers: int, load_erlangs: float) -> float:
    """Erlang B: the probability that a call finds all ``servers`` busy and is lost.

    M/M/n/n (no queue; the result holds for any handle-time distribution).
    ``load_erlangs`` is the offered load A in Erlang. Computed with the stable
    recursion B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1)), O(servers), exact to
    a few ulps at 100,000 servers; a value below ~1e-308 comes back as 0.0.
    ``erlang_b(15, 8.108)`` is 0.0100 (15 lines carry 8.108 Erlang at 1%).

    Raises ValueError when servers is not an integer >= 0 or the load is
    negative, infinite or NaN.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    return math.exp(_log_erlang_b(n, a))


def erlang_b_load(servers: int, blocking: float) -> float:
    """The offered load (Erlang) at which ``servers`` lines block a fraction ``blocking``.

    The inverse of :func:`erlang_b` in its load: the most traffic the lines can
    take at that grade of service. ``erlang_b_load(15, 0.01)`` is 8.108.
    Solved by Newton's method on log B inside a bisection bracket, to about
    1e-12 relative.

    Raises ValueError when servers < 1 or blocking is not strictly between 0 and 1.
    """
    n = _count("servers", servers)
    if n < 1:
        raise ValueError("servers must be >= 1 to carry any load")
    target = _fraction("blocking", blocking)
    log_t = math.log(target)
    # B grows with A; the carried load A (1 - B) never exceeds n, so at
    # A = n / (1 - target) the blocking is at least the target.
    lo, hi = 0.0, n / (1.0 - target)
    a = 0.5 * hi
    for _ in range(200):
        lb = _log_erlang_b(n, a)
        f = lb - log_t
        if f < 0.0:
            lo = a
        else:
            hi = a
        # d log B / dA = n / A - 1 + B
        slope = n / a - 1.0 + math.exp(lb)
        step = f / slope if slope > 0.0 else math.inf
        nxt = a - step
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - a) <= 1e-14 * a or hi - lo <= 1e-14 * hi:
            return nxt
        a = nxt
    return a  # pragma: no cover - Newton converges long before


def staff_erlang_b(load_erlangs: float, blocking: float) -> int:
    """The fewest lines that carry ``load_erlangs`` with blocking at most ``blocking``.

    Returns 0 for a zero load. Raises ValueError for a negative, infinite or
    NaN load, or a blocking not strictly between 0 and 1.
    """
    a = _nonneg("load_erlangs", load_erlangs)
    target = _fraction("blocking", blocking)
    if a == 0.0:
        return 0
    b, n = 1.0, 0
    while b > target:
        n += 1
        b = a * b / (n + a * b)
    return n


# --------------------------------------------------------------------------
# Erlang C


def _erlang_c(n: int, load: float) -> float:
    if load >= n:
        return 1.0
    b = math.exp(_log_erlang_b(n, load))
    return n * b / (n - load + load * b)


def erlang_c(servers: int, load_erlangs: float) -> float:
    """Erlang C: the probability that a call waits (all servers busy), M/M/n.

    C = n B / (n - A + A B) with B = :func:`erlang_b` (servers, A): no factorial
    or power is formed, so it holds to 100,000 servers. Returns 1.0 when
    ``load_erlangs >= servers`` (the queue grows without bound; every call
    waits). With 14 agents and 10 Erlang (100 calls per 30 minutes, 180 s
    handle time) it is 0.1741319.

    Raises ValueError when servers is not an integer >= 0 or the load is
    negative, infinite or NaN.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    return _erlang_c(n, a)


def service_level_c(servers: int, load_erlangs: float, aht_s: float, threshold_s: float) -> float:
    """The share of calls answered within ``threshold_s`` seconds, M/M/n FIFO.

    P(wait <= T) = 1 - C exp(-(n - A) T / aht_s), with C = :func:`erlang_c`.
    Every call is answered in Erlang C, so the offered and answered
    denominators agree. 0.0 when ``load_erlangs >= servers``. With 14 agents,
    10 Erlang, 180 s handle time and T = 20 s it is 0.88835.

    Raises ValueError for servers not an integer >= 0, a negative load or
    threshold, a non-positive handle time, or any NaN or infinity.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    h = _positive("aht_s", aht_s)
    t = _nonneg("threshold_s", threshold_s)
    if a >= n:
        return 0.0
    return 1.0 - _erlang_c(n, a) * math.exp(-(n - a) * t / h)


def asa_c(servers: int, load_erlangs: float, aht_s: float) -> float:
    """ASA in seconds: the mean wait of all calls (every call is answered), M/M/n.

    ASA = C aht_s / (n - A); the calls that do wait wait aht_s / (n - A) on
    average. ``math.inf`` when ``load_erlangs >= servers``. With 14 agents,
    10 Erlang and 180 s handle time it is 7.8359 s.

    Raises ValueError for servers not an integer >= 0, a negative load, a
    non-positive handle time, or any NaN or infinity.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    h = _positive("aht_s", aht_s)
    if a >= n:
        return math.inf
    return _erlang_c(n, a) * h / (n - a)


class ErlangC(NamedTuple):
    """Erlang C figures for one staffing (all calls are answered).

    ``p_wait``: share of calls that wait; ``service_level``: share answered
    within the threshold; ``asa_s``: mean wait of all calls, in seconds (inf
    when unstable); ``asa_waiting_s``: mean wait of the calls that wait;
    ``occupancy``: share of the agents' time spent handling calls (A / n,
    capped at 1).
    """

    p_wait: float
    service_level: float
    asa_s: float
    asa_waiting_s: float
    occupancy: float


def erlang_c_metrics(
    servers: int, load_erlangs: float, aht_s: float, threshold_s: float
) -> ErlangC:
    """P(wait), service level, ASA and occupancy of one M/M/n staffing, at once.

    The same values as :func:`erlang_c`, :func:`service_level_c` and
    :func:`asa_c`; when ``load_erlangs >= servers`` the queue is unstable:
    p_wait 1, service level 0, waits inf, occupancy 1. Raises ValueError as
    they do.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    h = _positive("aht_s", aht_s)
    t = _nonneg("threshold_s", threshold_s)
    if a >= n:
        return ErlangC(1.0, 0.0, math.inf, math.inf, 1.0 if n else math.nan)
    c = _erlang_c(n, a)
    wait_waiting = h / (n - a)
    return ErlangC(c, 1.0 - c * math.exp(-t / wait_waiting), c * wait_waiting, wait_waiting, a / n)


# --------------------------------------------------------------------------
# Erlang A


class ErlangA(NamedTuple):
    """Erlang A (M/M/n+M) figures for one staffing. Times in seconds.

    - ``p_wait``: share of offered calls that find every agent busy and queue.
    - ``p_abandon``: share of offered calls that hang up before an answer.
    - ``service_level``: answered within the threshold / **offered** (a call
      that abandons, even within the threshold, counts against it).
    - ``service_level_answered``: answered within the threshold / answered.
    - ``asa_s``: mean wait of the answered calls (0 wait included).
    - ``mean_wait_s``: mean wait of all offered calls, abandoned ones up to the
      moment they hang up (= p_abandon x mean patience).
    - ``occupancy``: share of the agents' time spent handling calls.

    Figures that divide by the answered calls, or by the agents, are NaN when
    ``servers`` is 0.
    """

    p_wait: float
    p_abandon: float
    service_level: float
    service_level_answered: float
    asa_s: float
    mean_wait_s: float
    occupancy: float


class _Tail(NamedTuple):
    log_s: float  # log sum_{j>=0} t_j
    log_s1: float  # log sum_{j>=1} t_j (-inf when there is none)
    # log_s and log_s1 plus log(z**x e**-z / Gamma(x+1)), i.e. the logs of the
    # regularized lower gamma P(x, z) and of P(x, z) - that prefix; they are
    # small numbers even when log_s is huge (a long queue).
    log_g: float
    log_g1: float
    far: bool  # the window does not reach j = 0 (t_0 is negligible)
    mean_j: float  # sum_j j t_j / S
    asa: float  # sum_j t_j x/(x+j+1) H_j / S, H_j = sum_{i=1}^{j+1} 1/(x+i)


def _stirlerr(a: float) -> float:
    """lgamma(a + 1) - (a log a - a + log(2 pi a) / 2), for a >= 1."""
    if a < 15.0:
        return math.lgamma(a + 1.0) - (a + 0.5) * math.log(a) + a - 0.5 * _LOG_2PI
    a2 = a * a
    return (
        1.0 / 12.0
        - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / (1188.0 * a2)) / a2) / a2) / a2
    ) / a


def _bd0(a: float, z: float) -> float:
    """a log(a / z) + z - a without cancellation when a is close to z (Loader)."""
    if abs(a - z) < 0.1 * (a + z):
        v = (a - z) / (a + z)
        s = (a - z) * v
        ej = 2.0 * a * v
        v2 = v * v
        j = 1
        while True:
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
            j += 1
    return a * math.log(a / z) + z - a


def _log_prefix(a: float, z: float) -> float:
    """log(z**a exp(-z) / Gamma(a + 1)) for a >= 0, z > 0, with no large cancellation."""
    if a == 0.0:
        return -z
    if a < 1.0:
        return a * math.log(z) - z - math.lgamma(a + 1.0)
    return -_bd0(a, z) - 0.5 * (_LOG_2PI + math.log(a)) - _stirlerr(a)


def _harmonic(a: float, m: int) -> float:
    """sum_{i=0}^{m-1} 1 / (a + i) = digamma(a + m) - digamma(a), for a > 0."""
    if m <= 64:
        return float(np.sum(1.0 / (a + np.arange(m, dtype=np.float64))))
    s = 0.0
    while a < 30.0:  # the asymptotic series below wants a >= 30 for 1e-16
        s += 1.0 / a
        a += 1.0
        m -= 1
    b = a + m
    ia2, ib2 = 1.0 / (a * a), 1.0 / (b * b)

    def tail(u2: float) -> float:  # digamma(z) - log z + 1/(2z), in 1/z**2
        return -u2 * (1 / 12 - u2 * (1 / 120 - u2 * (1 / 252 - u2 * (1 / 240 - u2 / 132))))

    return s + math.log1p(m / a) + 0.5 / a - 0.5 / b + tail(ib2) - tail(ia2)


def _log_ratio(z: float, d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """log(z / d), elementwise: log t_k - log t_(k-1) for d = x + k."""
    out: npt.NDArray[np.float64] = np.log(d)
    np.subtract(math.log(z), out, out=out)
    near = z > 0.5 * d  # where the ratio is close to 1, log1p keeps the digits
    out[near] = np.log1p((z - d[near]) / d[near])
    return out


def _tail(x: float, z: float, moments: bool) -> _Tail:
    """Sums over the queue states of M/M/n+M, in units of the all-busy state.

    t_j = z**j / ((x+1)(x+2)...(x+j)) is the weight of "j callers waiting"
    relative to "n busy, none waiting", with x = n mu / theta and
    z = lambda / theta. S = sum t_j is Kummer's M(1, x+1, z), i.e.
    x e**z z**-x lower_gamma(x, z). The t_j rise up to j* = floor(z - x), then
    fall faster than geometrically; only the window where t_j > e**-60 t_j*
    is summed, in logarithms relative to t_j*, so nothing overflows.
    """
    if z == 0.0:
        g = 0.0 if x == 0.0 else -math.inf
        return _Tail(0.0, -math.inf, g, -math.inf, False, 0.0, x / (x + 1.0) ** 2)
    mode = max(0, math.floor(z - x))
    width = math.sqrt(x + mode)  # the t_j look like a normal density of this sd
    if width >= _STRIDE_FROM and mode > 14.0 * width:
        return _tail_strided(x, z, mode, width, moments)

    # Walk down from the mode to the window's low end (0 unless the queue is long).
    lo, rel_lo, chunk = mode, 0.0, 64
    while lo > 0:
        ks = np.arange(lo, max(lo - chunk, 0), -1, dtype=np.int64)
        kf = ks.astype(np.float64)
        rel = rel_lo - np.cumsum(_log_ratio(z, x + kf))  # log t_{k-1} / t_mode
        below = np.flatnonzero(rel < -_CUT)
        if below.size:
            lo, rel_lo = int(ks[below[0]]) - 1, float(rel[below[0]])
            break
        lo, rel_lo, chunk = int(ks[-1]) - 1, float(rel[-1]), min(2 * chunk, 1 << 20)

    # Then up through the mode until the weights are negligible again.
    u_lo = math.exp(rel_lo)
    sum_u1 = 0.0  # weights of j >= 1 above the low end
    sum_ju = lo * u_lo
    h = _harmonic(x + 1.0, lo + 1) if moments else 0.0
    sum_asa = u_lo * x / (x + lo + 1.0) * h
    j, rel_j, chunk = lo, rel_lo, 64
    while True:
        kf = np.arange(j + 1, j + 1 + chunk, dtype=np.float64)
        r = rel_j + np.cumsum(_log_ratio(z, x + kf))
        u = np.exp(r)
        sum_u1 += float(u.sum())
        sum_ju += float((kf * u).sum())
        if moments:
            hs = h + np.cumsum(1.0 / (x + kf + 1.0))
            sum_asa += float((u * (x / (x + kf + 1.0)) * hs).sum())
            h = float(hs[-1])
        j, rel_j = j + chunk, float(r[-1])
        if j > mode and rel_j < -_CUT:
            break
        chunk = min(2 * chunk, 1 << 20)

    s = u_lo + sum_u1
    mean_j, asa = sum_ju / s, sum_asa / s
    if lo == 0:
        log_mode = -rel_lo  # t_0 = 1
        log_s = log_mode + math.log(s)
        log_s1 = log_mode + math.log(sum_u1) if sum_u1 > 0.0 else -math.inf
        prefix = _log_prefix(x, z)
        return _Tail(log_s, log_s1, log_s + prefix, log_s1 + prefix, False, mean_j, asa)
    # t_0 and its neighbours are below e**-60 of the sum, so S - 1 = S. The
    # mode's weight relative to t_0 is a ratio of two prefixes: the mode's is
    # near its maximum, t_0's may be astronomically small; keep them apart.
    log_g = _log_prefix(x + mode, z) + math.log(s)
    log_s = log_g - _log_prefix(x, z)
    return _Tail(log_s, log_s, log_g, log_g, True, mean_j, asa)


# A window wider than this many standard deviations' worth of terms is summed
# with a stride (below); tests lower it to compare both ways.
_STRIDE_FROM = 4096.0


def _tail_strided(x: float, z: float, mode: int, width: float, moments: bool) -> _Tail:
    """_tail for a long queue far from 0 (a heavy overload with very patient callers).

    There the window holds millions of terms, but they are samples of an
    analytic function of j shaped like a normal density of sd ``width``. By
    Poisson's summation formula, every ``step``-th term times ``step`` gives the
    same sum up to terms of order exp(-2 (pi width / step)**2), far below
    rounding for step = width / 32. Each log t_j comes from the stable
    prefixes, not from a running sum.
    """
    step = max(1, int(width / 32.0))
    base = _log_prefix(x + mode, z)
    js: list[int] = []
    rels: list[float] = []
    for direction in (-1, 1):
        j = mode if direction < 0 else mode + step
        while True:
            rel = _log_prefix(x + j, z) - base
            js.append(j)
            rels.append(rel)
            if rel < -_CUT - 5.0:
                break
            j += direction * step
    jf = np.array(js, dtype=np.float64)
    u = np.exp(np.array(rels))
    total = float(u.sum())
    asa = 0.0
    if moments:
        hs = np.array([_harmonic(x + 1.0, j + 1) for j in js])
        asa = float((u * (x / (x + jf + 1.0)) * hs).sum()) / total
    log_g = base + math.log(step * total)
    log_s = log_g - _log_prefix(x, z)
    return _Tail(log_s, log_s, log_g, log_g, True, float((jf * u).sum()) / total, asa)


def _logistic(d: float) -> float:
    """1 / (1 + exp(d)) without overflow."""
    if d > 0.0:
        e = math.exp(-d)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(d))


def _log1pexp(d: float) -> float:
    """log(1 + exp(d)) without overflow."""
    return d + math.log1p(math.exp(-d)) if d > 0.0 else math.log1p(math.exp(d))


def erlang_a(
    servers: int, load_erlangs: float, aht_s: float, patience_s: float, threshold_s: float
) -> ErlangA:
    """Erlang A (Palm's M/M/n+M): waiting with impatient callers, exactly.

    Calls arrive at rate A / aht_s, are served first come first served by
    ``servers`` agents with exponential handle times of mean ``aht_s``, and each
    waiting caller hangs up after an exponential patience of mean
    ``patience_s``. The queue is stable at any load. ``patience_s = math.inf``
    gives Erlang C (unstable, with p_wait 1 and infinite waits, when the load
    reaches the servers).

    Method (docs/ERLANG.md): the birth-death chain's stationary law, with the
    queue states summed in a window around their mode in logarithms (the
    Garnett-Mandelbaum-Reiman incomplete-gamma closed forms, evaluated term by
    term); the wait within ``threshold_s`` from the exact law of the virtual
    wait, P(V > t | V > 0) = lower_gamma(x, y e**(-t/patience)) / lower_gamma(x, y)
    with x = n patience / aht, y = A patience / aht. Exact to rounding (no
    many-server approximation); stable to 10,000 agents and beyond.

    Returns an :class:`ErlangA`. Raises ValueError for servers not an integer
    >= 0, a negative load or threshold, a non-positive handle time or
    patience, NaN, or an infinite value other than the patience.
    """
    n = _count("servers", servers)
    a = _nonneg("load_erlangs", load_erlangs)
    aht = _positive("aht_s", aht_s)
    patience = _positive("patience_s", patience_s, inf_ok=True)
    t = _nonneg("threshold_s", threshold_s)
    nan = math.nan
    if patience == math.inf:
        c = erlang_c_metrics(n, a, aht, t)
        return ErlangA(
            c.p_wait, 0.0, c.service_level, c.service_level, c.asa_s, c.asa_s, c.occupancy
        )
    if a == 0.0:  # nothing arrives: a test call finds the center empty
        if n == 0:
            return ErlangA(1.0, 1.0, 0.0, nan, nan, patience, nan)
        return ErlangA(0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0)

    x = n * patience / aht
    y = a * patience / aht
    q = _tail(x, y, moments=True)
    # 1/B(n) - 1 = (n/A) / B(n-1): the weight of the states with an idle agent,
    # relative to "all busy, none waiting", with no cancellation.
    log_idle = math.log(n / a) - _log_erlang_b(n - 1, a) if n else -math.inf
    p_wait = _logistic(log_idle - q.log_s)
    p_now = _logistic(q.log_s - log_idle)
    p_abandon = _unit(p_wait * q.mean_j / y)
    # P(answered | waits) = (x/y) (S - 1) / S: the same quantity as 1 - p_abandon
    # given a wait, written without a subtraction.
    answered_if_wait = (x / y) * math.exp(q.log_s1 - q.log_s)
    p_answered = p_now + p_wait * answered_if_wait
    if t > 0.0:
        y_t = y * math.exp(-t / patience)
        q_t = _tail(x, y_t, moments=False)
        if q.far or q_t.far:
            # log E_T - log prefix(x, y_t) + log prefix(x, y) is 0 exactly:
            # in the g form the huge terms never appear.
            log_late = q_t.log_g1 - q.log_g
        else:
            log_e = -(n / aht) * t - y * math.expm1(-t / patience)
            log_late = log_e + q_t.log_s1 - q.log_s
        late = (x / y) * math.exp(log_late)
        within_if_wait = max(0.0, answered_if_wait - late)
    else:
        within_if_wait = 0.0
    sl = p_now + p_wait * within_if_wait
    mean_wait = p_abandon * patience
    if n == 0:
        return ErlangA(p_wait, p_abandon, _unit(sl), nan, nan, mean_wait, nan)
    return ErlangA(
        p_wait,
        p_abandon,
        _unit(sl),
        _unit(sl / p_answered),
        p_wait * q.asa * patience / p_answered,
        mean_wait,
        _unit(a * p_answered / n),
    )


def _unit(p: float) -> float:
    """A probability put back into [0, 1] after rounding."""
    return min(1.0, max(0.0, p))


# --------------------------------------------------------------------------
# Square-root staffing (Halfin-Whitt, Garnett-Mandelbaum-Reiman)


def _log_phi(v: float) -> float:
    return -0.5 * v * v - 0.5 * _LOG_2PI


def _log_q(v: float) -> float:
    """log P(Z > v) for a standard normal Z, in both tails."""
    if v < 5.0:
        return math.log(0.5 * math.erfc(v / math.sqrt(2.0)))
    t = v  # Mills ratio Q/phi by its continued fraction, backwards
    for k in range(80, 0, -1):
        t = v + k / t
    return -math.log(t) + _log_phi(v)


class SquareRootStaffing(NamedTuple):
    """The square-root rule's answer: ``agents`` = ceil(R + ``beta`` sqrt(R))."""

    agents: int
    beta: float


def _targets(
    service_level: float | None,
    threshold_s: float | None,
    asa_s: float | None,
    abandon: float | None,
) -> tuple[float | None, float, float | None, float | None]:
    sl = None if service_level is None else _fraction("service_level", service_level)
    if sl is not None and threshold_s is None:
        raise ValueError("threshold_s is needed with a service_level target")
    t = 0.0 if threshold_s is None else _nonneg("threshold_s", threshold_s)
    asa = None if asa_s is None else _positive("asa_s", asa_s)
    ab = None if abandon is None else _fraction("abandon", abandon)
    if sl is None and asa is None and ab is None:
        raise ValueError("give a target: service_level (with threshold_s), asa_s or abandon")
    return sl, t, asa, ab


def _beta(ok: Callable[[float], bool], lo: float, hi: float) -> float:
    """The smallest beta in [lo, hi] with ok(beta), ok being monotone."""
    if ok(lo):
        return lo
    if not ok(hi):
        return hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def square_root_staffing(
    load_erlangs: float,
    aht_s: float,
    *,
    service_level: float | None = None,
    threshold_s: float | None = None,
    asa_s: float | None = None,
    patience_s: float = math.inf,
    abandon: float | None = None,
) -> SquareRootStaffing:
    """The square-root staffing rule: n = R + beta sqrt(R), beta from the target.

    R is the offered load in Erlang. beta comes from the many-server (QED)
    approximations, with every given target met:

    - Erlang C (``patience_s`` infinite), Halfin-Whitt: P(wait) ~ alpha(beta) =
      1 / (1 + beta Phi(beta) / phi(beta)); service level ~ 1 - alpha(beta)
      exp(-beta sqrt(R) T / aht_s); ASA ~ alpha(beta) aht_s / (beta sqrt(R)).
    - Erlang A (finite ``patience_s``), Garnett-Mandelbaum-Reiman, with
      r = sqrt(aht_s / patience_s), b = beta / r and h the standard normal
      hazard rate: P(wait) ~ w = 1 / (1 + r h(b) / h(-beta)); P(abandon) ~
      w r (h(b) - b) / sqrt(R); service level ~ 1 - w Q(r sqrt(R) T / aht_s + b)
      / Q(b) - P(abandon) (waited past T, or hung up).

    Targets: ``service_level`` (a fraction, with ``threshold_s``), ``asa_s``
    (Erlang C only) and ``abandon`` (Erlang A only). The result is an estimate,
    often off by an agent or two at small loads; :func:`staff_erlang_c` and
    :func:`staff_erlang_a` start from it and return the exact minimum.

    Raises ValueError for bad input, for no target, or for a target the chosen
    model cannot express.
    """
    a = _nonneg("load_erlangs", load_erlangs)
    aht = _positive("aht_s", aht_s)
    patience = _positive("patience_s", patience_s, inf_ok=True)
    sl, t, asa, ab = _targets(service_level, threshold_s, asa_s, abandon)
    if a == 0.0:
        return SquareRootStaffing(0, 0.0)
    root = math.sqrt(a)
    c = root * t / aht
    if patience == math.inf:
        if ab is not None:
            raise ValueError("abandon needs a finite patience_s (Erlang A)")

        def ok(beta: float) -> bool:
            log_alpha = -_log1pexp(math.log(beta) + _log_q(-beta) - _log_phi(beta))
            good = sl is None or 1.0 - math.exp(log_alpha - beta * c) >= sl
            return good and (asa is None or math.exp(log_alpha) * aht / (beta * root) <= asa)

        beta = _beta(ok, 1e-9, 60.0)
        n = max(math.ceil(a + beta * root - 1e-9), math.floor(a) + 1)
        return SquareRootStaffing(n, beta)
    if asa is not None:
        raise ValueError("asa_s is a target for Erlang C only (leave patience_s infinite)")
    r = math.sqrt(aht / patience)

    def ok_a(beta: float) -> bool:
        b = beta / r
        log_hb = _log_phi(b) - _log_q(b)  # log h(b)
        w = _logistic(math.log(r) + log_hb - (_log_phi(beta) - _log_q(-beta)))
        p_ab = w * r * (math.exp(log_hb) - b) / root
        # Not answered within T: waited longer than T, or hung up before.
        late = w * math.exp(_log_q(r * c + b) - _log_q(b)) + p_ab
        return (sl is None or 1.0 - late >= sl) and (ab is None or p_ab <= ab)

    beta = _beta(ok_a, -root, 60.0)
    return SquareRootStaffing(max(math.ceil(a + beta * root - 1e-9), 1), beta)


# --------------------------------------------------------------------------
# Exact staffing


def _fewest(meets: Callable[[int], bool], start: int, fails_up_to: int, load: float) -> int:
    """The smallest n with meets(n), meets being monotone and false up to fails_up_to.

    Gallops from ``start`` (1, 2, 4, ... agents at a time) to bracket the
    answer, then bisects: O(log distance) evaluations.
    """
    n0 = max(start, fails_up_to + 1)
    if meets(n0):
        hi, step = n0, 1
        while True:
            lo = hi - step
            if lo <= fails_up_to:
                lo = fails_up_to
                break
            if not meets(lo):
                break
            hi, step = lo, 2 * step
    else:
        lo, step = n0, 1
        cap = 1000 * (n0 + load + 100)  # a guard: the targets are reachable
        while True:
            hi = lo + step
            if meets(hi):
                break
            if hi > cap:
                raise ValueError(f"no staffing up to {hi} agents meets the target")
            lo, step = hi, 2 * step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi


def staff_erlang_c(
    load_erlangs: float,
    aht_s: float,
    *,
    service_level: float | None = None,
    threshold_s: float | None = None,
    asa_s: float | None = None,
) -> int:
    """The fewest agents meeting every given target in Erlang C (M/M/n).

    Targets: ``service_level`` (fraction answered within ``threshold_s``
    seconds, e.g. 0.8 and 20 for 80/20) and/or ``asa_s`` (mean wait of all
    calls, seconds). The search starts at :func:`square_root_staffing` and
    steps from there; the result n meets the targets and n - 1 does not.
    Returns 0 for a zero load.

    Raises ValueError for bad input, no target, a service level not strictly
    between 0 and 1, a non-positive ASA, or a missing threshold.
    """
    a = _nonneg("load_erlangs", load_erlangs)
    aht = _positive("aht_s", aht_s)
    sl, t, asa, _ = _targets(service_level, threshold_s, asa_s, None)
    if a == 0.0:
        return 0

    def meets(n: int) -> bool:
        m = erlang_c_metrics(n, a, aht, t)
        return (sl is None or m.service_level >= sl) and (asa is None or m.asa_s <= asa)

    start = square_root_staffing(a, aht, service_level=sl, threshold_s=t, asa_s=asa).agents
    return _fewest(meets, start, math.floor(a), a)


def staff_erlang_a(
    load_erlangs: float,
    aht_s: float,
    patience_s: float,
    *,
    service_level: float | None = None,
    threshold_s: float | None = None,
    abandon: float | None = None,
    definition: Literal["offered", "answered"] = "offered",
) -> int:
    """The fewest agents meeting every given target in Erlang A (M/M/n+M).

    Targets: ``service_level`` (fraction answered within ``threshold_s``
    seconds, over the offered calls, or over the answered ones with
    ``definition="answered"``) and/or ``abandon`` (the most abandoned / offered).
    The search starts at :func:`square_root_staffing` and steps from there;
    the result n meets the targets and n - 1 does not. Returns 0 for a zero load.

    Raises ValueError for bad input, no target, a target not strictly between 0
    and 1, a missing threshold, or an unknown definition.
    """
    a = _nonneg("load_erlangs", load_erlangs)
    aht = _positive("aht_s", aht_s)
    patience = _positive("patience_s", patience_s)
    sl, t, _, ab = _targets(service_level, threshold_s, None, abandon)
    if definition not in ("offered", "answered"):
        raise ValueError(f"definition must be 'offered' or 'answered', not {definition!r}")
    if a == 0.0:
        return 0

    def meets(n: int) -> bool:
        m = erlang_a(n, a, aht, patience, t)
        level = m.service_level if definition == "offered" else m.service_level_answered
        return (sl is None or level >= sl) and (ab is None or m.p_abandon <= ab)

    start = square_root_staffing(
        a, aht, service_level=sl, threshold_s=t, patience_s=patience, abandon=ab
    ).agents
    return _fewest(meets, start, 0, a)
