"""Erlang B, C and A (agner.sim.erlang) and `agner erlang`: public figures,
direct formulas, a birth-death chain, limits, stability and staffing minimality."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agner.cli import main
from agner.sim import erlang as e

ROOT = Path(__file__).resolve().parent.parent
# 100 calls per 30 minutes at 180 s handle time: 10 Erlang.
LOAD = e.offered_load(100, 1800, 180)


# --------------------------------------------------------------------------
# The public checks


def test_public_erlang_c_checks() -> None:
    assert abs(LOAD - 10.0) < 1e-12
    assert round(e.erlang_c(14, LOAD), 7) == 0.1741319
    assert round(e.service_level_c(14, LOAD, 180, 20), 5) == 0.88835
    assert round(e.asa_c(14, LOAD, 180), 4) == 7.8359


def test_public_erlang_b_checks() -> None:
    assert e.erlang_b(15, 8.108) == pytest.approx(0.01, abs=5e-7)
    assert round(e.erlang_b_load(15, 0.01), 3) == 8.108
    assert e.staff_erlang_b(8.108, 0.01) == 15


# --------------------------------------------------------------------------
# Direct formulas for small n


def _b_direct(n: int, a: float) -> float:
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    return terms[-1] / sum(terms)


def _c_direct(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 15, 30])
@pytest.mark.parametrize("a", [0.01, 0.5, 1.0, 4.3, 12.0, 29.5])
def test_recursion_matches_direct_formulas(n: int, a: float) -> None:
    assert e.erlang_b(n, a) == pytest.approx(_b_direct(n, a), rel=1e-12)
    if a < n:
        assert e.erlang_c(n, a) == pytest.approx(_c_direct(n, a), rel=1e-12)
        c = _c_direct(n, a)
        assert e.asa_c(n, a, 60) == pytest.approx(c * 60 / (n - a), rel=1e-12)
        assert e.service_level_c(n, a, 60, 15) == pytest.approx(
            1 - c * math.exp(-(n - a) * 15 / 60), rel=1e-12
        )
    else:
        assert e.erlang_c(n, a) == 1.0
        assert e.asa_c(n, a, 60) == math.inf
        assert e.service_level_c(n, a, 60, 15) == 0.0


def test_edge_values() -> None:
    assert e.erlang_b(0, 3.0) == 1.0
    assert e.erlang_b(5, 0.0) == 0.0
    assert e.erlang_c(5, 0.0) == 0.0
    assert e.service_level_c(5, 0.0, 60, 0) == 1.0
    assert e.erlang_c(3, 3.0) == 1.0  # load == servers: unstable
    # Far below the servers the blocking underflows to 0, not to NaN.
    assert e.erlang_b(2000, 1.0) == 0.0


def test_erlang_c_metrics_agrees() -> None:
    m = e.erlang_c_metrics(14, LOAD, 180, 20)
    assert m.p_wait == e.erlang_c(14, LOAD)
    assert m.service_level == pytest.approx(e.service_level_c(14, LOAD, 180, 20), rel=1e-15)
    assert m.asa_s == pytest.approx(e.asa_c(14, LOAD, 180), rel=1e-15)
    assert m.asa_waiting_s == pytest.approx(45.0)
    assert m.occupancy == pytest.approx(10 / 14)


# --------------------------------------------------------------------------
# Monotonicity and inverses (hypothesis)

loads = st.floats(min_value=0.01, max_value=400.0)
servers = st.integers(min_value=1, max_value=400)


@settings(max_examples=60, deadline=None)
@given(servers, loads)
def test_blocking_falls_with_lines_and_rises_with_load(n: int, a: float) -> None:
    b = e.erlang_b(n, a)
    assert 0.0 <= b <= 1.0
    assert e.erlang_b(n + 1, a) <= b
    assert e.erlang_b(n, a * 1.01) >= b


@settings(max_examples=60, deadline=None)
@given(servers, loads, st.floats(min_value=0.0, max_value=120.0))
def test_erlang_c_monotone(n: int, a: float, t: float) -> None:
    c = e.erlang_c(n, a)
    assert e.erlang_b(n, a) <= c <= 1.0  # waiting is likelier than blocking
    assert e.erlang_c(n + 1, a) <= c
    assert e.erlang_c(n, a * 1.01) >= c
    sl = e.service_level_c(n, a, 180, t)
    assert 0.0 <= sl <= 1.0
    assert e.service_level_c(n + 1, a, 180, t) >= sl
    assert e.service_level_c(n, a, 180, t + 5) >= sl


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.floats(min_value=1e-6, max_value=0.99))
def test_erlang_b_load_inverts_erlang_b(n: int, blocking: float) -> None:
    a = e.erlang_b_load(n, blocking)
    assert e.erlang_b(n, a) == pytest.approx(blocking, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=200),
    st.floats(min_value=0.1, max_value=300.0),
    st.floats(min_value=5.0, max_value=2000.0),
)
def test_erlang_a_monotone_in_agents_and_patience(n: int, a: float, patience: float) -> None:
    m = e.erlang_a(n, a, 180, patience, 20)
    more = e.erlang_a(n + 1, a, 180, patience, 20)
    assert more.p_abandon <= m.p_abandon * (1 + 1e-9)
    assert more.service_level >= m.service_level - 1e-12
    assert more.p_wait <= m.p_wait * (1 + 1e-9)
    calmer = e.erlang_a(n, a, 180, patience * 1.5, 20)
    assert calmer.p_abandon <= m.p_abandon * (1 + 1e-9)
    for v in m:
        assert math.isfinite(v)
    for p in (m.p_wait, m.p_abandon, m.service_level, m.service_level_answered, m.occupancy):
        assert 0.0 <= p <= 1.0
    assert m.service_level <= m.service_level_answered + 1e-12
    assert m.mean_wait_s == pytest.approx(m.p_abandon * patience, rel=1e-12)


# --------------------------------------------------------------------------
# Stability at 10,000 agents


@pytest.mark.parametrize("a", [100.0, 5000.0, 9800.0, 9999.9, 10000.0, 12000.0, 1e6])
def test_stable_at_ten_thousand_agents(a: float) -> None:
    n = 10_000
    for v in (e.erlang_b(n, a), e.erlang_c(n, a), e.service_level_c(n, a, 180, 20)):
        assert 0.0 <= v <= 1.0
    assert e.asa_c(n, a, 180) >= 0.0
    for patience in (1.0, 120.0, 3600.0, 1e7):
        m = e.erlang_a(n, a, 180, patience, 20)
        for p in (m.p_wait, m.p_abandon, m.service_level, m.service_level_answered, m.occupancy):
            assert 0.0 <= p <= 1.0, (a, patience, m)
        assert math.isfinite(m.asa_s) and math.isfinite(m.mean_wait_s) and m.asa_s >= 0


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=30_000),
    st.floats(min_value=1e-4, max_value=3e5),
    st.floats(min_value=1.0, max_value=1e4),
    st.floats(min_value=1e-4, max_value=1e10),
    st.floats(min_value=0.0, max_value=1e6),
)
def test_erlang_a_is_finite_and_fast_anywhere(
    n: int, a: float, aht: float, patience: float, t: float
) -> None:
    # Loads up to 300,000 Erlang, patience from 0.1 ms to 300 years: values in
    # range, no NaN, and each call well under a second (the deadline is off
    # only because CI machines vary).
    m = e.erlang_a(n, a, aht, patience, t)
    for p in (m.p_wait, m.p_abandon, m.service_level):
        assert 0.0 <= p <= 1.0
    if n:
        assert 0.0 <= m.service_level_answered <= 1.0 and 0.0 <= m.occupancy <= 1.0
        assert 0.0 <= m.asa_s < math.inf
    assert 0.0 <= m.mean_wait_s <= patience


def test_strided_sums_agree_with_term_by_term_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long queue (heavy overload, patient callers) is summed with a stride;
    # force both ways on windows of a few thousand terms and compare.
    cases = [
        (100, 150.0, 180.0, 1e6, 20.0),
        (30, 90.0, 60.0, 5e5, 3000.0),
        (5, 50.0, 10.0, 1e5, 0.5),
    ]
    for args in cases:
        monkeypatch.setattr(e, "_STRIDE_FROM", math.inf)
        exact = e.erlang_a(*args)
        monkeypatch.setattr(e, "_STRIDE_FROM", 50.0)
        strided = e.erlang_a(*args)
        for key, value in exact._asdict().items():
            assert getattr(strided, key) == pytest.approx(value, rel=1e-11, abs=1e-12), key


def test_large_center_matches_known_shape() -> None:
    # 9,800 Erlang on 10,000 agents: QED regime, beta = 2 sqrt(9800) / 9800 ~ 2.02.
    c = e.erlang_c(10_000, 9_800)
    assert 0.01 < c < 0.05
    # Overloaded by 80% with 2 min patience: the fluid limit says 1 - n/A abandon.
    m = e.erlang_a(10_000, 18_000, 180, 120, 20)
    assert m.p_abandon == pytest.approx(1 - 10_000 / 18_000, abs=1e-3)
    assert m.occupancy == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------
# Erlang A against a truncated birth-death chain


def _chain(n: int, a: float, aht: float, patience: float, t: float, extra: int) -> dict[str, float]:
    """M/M/n+M by brute force: stationary law of the chain with n + extra states,
    then the tagged caller's own absorbing chain (waiting behind i callers) for
    the service level (uniformization) and the wait of the answered."""
    lam, mu, th = a / aht, 1 / aht, 1 / patience
    k = np.arange(n + extra + 1)
    death = np.minimum(k, n) * mu + np.maximum(k - n, 0) * th
    pi = np.ones(len(k))
    for i in range(1, len(k)):
        pi[i] = pi[i - 1] * lam / death[i]
    pi /= pi.sum()
    waiting = np.maximum(k - n, 0)
    p_wait = pi[n:].sum()
    eq = (waiting * pi).sum()
    # The tagged caller: state i = callers ahead, 0..extra; then served, abandoned.
    m = extra + 1
    g = np.zeros((m + 2, m + 2))
    for i in range(m):
        step = n * mu + i * th
        g[i, i - 1 if i else m] += step
        g[i, m + 1] += th
        g[i, i] -= step + th
    start = np.zeros(m + 2)
    start[:m] = pi[n:]  # arrivals finding k >= n callers wait behind k - n
    start[m] += pi[:n].sum()  # the rest are answered at once
    # P(answered by t): uniformization.
    rate = -g.diagonal().min()
    p = np.eye(m + 2) + g / rate
    steps = int(rate * t + 12 * math.sqrt(rate * t + 1) + 30)
    v, within, log_w = start.copy(), 0.0, -rate * t
    for j in range(steps):
        within += math.exp(log_w) * v[m]
        v = v @ p
        log_w += math.log(rate * t) - math.log(j + 1) if t > 0 else -math.inf
    # E[wait; answered] = sum over states of time spent there x P(answered from there).
    q = -g[:m, :m]
    served = np.linalg.solve(q, g[:m, m])
    time_in = np.linalg.solve(q.T, pi[n:])
    wait_answered = float(time_in @ served)
    p_answered = pi[:n].sum() + float(pi[n:] @ served)
    return {
        "p_wait": p_wait,
        "p_abandon": th * eq / lam,
        "service_level": within,
        "service_level_answered": within / p_answered,
        "asa_s": wait_answered / p_answered,
        "mean_wait_s": eq / lam,
        "occupancy": (np.minimum(k, n) * pi).sum() / n,
    }


@pytest.mark.parametrize(
    ("n", "a", "aht", "patience", "t"),
    [
        (1, 0.5, 180, 60, 10),
        (3, 2.5, 120, 300, 30),
        (5, 7.0, 180, 120, 20),
        (8, 6.0, 300, 30, 15),
        (2, 10.0, 60, 200, 5),
        (4, 3.9, 100, 1000, 0),
        (14, LOAD, 180, 120, 20),
        (6, 0.2, 180, 60, 20),
    ],
)
def test_erlang_a_matches_birth_death_chain(
    n: int, a: float, aht: float, patience: float, t: float
) -> None:
    got = e.erlang_a(n, a, aht, patience, t)._asdict()
    want = _chain(n, a, aht, patience, t, extra=150)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-10, abs=1e-13), key


def test_erlang_a_tends_to_erlang_c_with_endless_patience() -> None:
    c = e.erlang_c_metrics(14, LOAD, 180, 20)
    for patience in (1e8, 1e10):
        m = e.erlang_a(14, LOAD, 180, patience, 20)
        assert m.p_wait == pytest.approx(c.p_wait, rel=1e-5)
        assert m.service_level == pytest.approx(c.service_level, rel=1e-5)
        assert m.asa_s == pytest.approx(c.asa_s, rel=1e-5)
        assert m.p_abandon < 1e-6
    exact = e.erlang_a(14, LOAD, 180, math.inf, 20)
    assert (exact.p_wait, exact.service_level, exact.asa_s) == (c.p_wait, c.service_level, c.asa_s)
    assert exact.p_abandon == 0.0
    # A large center near saturation too.
    m = e.erlang_a(1000, 980, 180, 1e9, 20)
    assert m.p_wait == pytest.approx(e.erlang_c(1000, 980), rel=1e-4)


def test_erlang_a_tends_to_erlang_b_with_no_patience() -> None:
    # Callers who leave at once: those who find all busy are lost, as in Erlang B.
    m = e.erlang_a(7, 5.0, 180, 1e-6, 20)
    b = e.erlang_b(7, 5.0)
    assert m.p_wait == pytest.approx(b, rel=1e-6)
    assert m.p_abandon == pytest.approx(b, rel=1e-6)
    assert m.service_level == pytest.approx(1 - b, rel=1e-6)


def test_erlang_a_without_agents_or_load() -> None:
    none = e.erlang_a(0, 3.0, 180, 60, 20)
    assert (none.p_wait, none.p_abandon, none.service_level) == (1.0, 1.0, 0.0)
    assert none.mean_wait_s == pytest.approx(60.0)
    assert math.isnan(none.asa_s)
    idle = e.erlang_a(3, 0.0, 180, 60, 20)
    assert (idle.p_wait, idle.p_abandon, idle.service_level, idle.occupancy) == (0, 0, 1, 0)


# --------------------------------------------------------------------------
# Staffing


def _sl_c(n: int, a: float, sl: float, t: float) -> bool:
    return e.service_level_c(n, a, 180, t) >= sl


@pytest.mark.parametrize("a", [0.3, 2.0, LOAD, 47.5, 380.0, 4000.0])
@pytest.mark.parametrize(("sl", "t"), [(0.8, 20.0), (0.95, 10.0), (0.5, 0.0)])
def test_staff_erlang_c_service_level_is_the_minimum(a: float, sl: float, t: float) -> None:
    n = e.staff_erlang_c(a, 180, service_level=sl, threshold_s=t)
    assert _sl_c(n, a, sl, t) and not _sl_c(n - 1, a, sl, t)


@pytest.mark.parametrize("a", [0.3, LOAD, 380.0, 4000.0])
@pytest.mark.parametrize("asa", [1.0, 15.0, 120.0])
def test_staff_erlang_c_asa_is_the_minimum(a: float, asa: float) -> None:
    n = e.staff_erlang_c(a, 180, asa_s=asa)
    assert e.asa_c(n, a, 180) <= asa < e.asa_c(n - 1, a, 180)


def test_staff_erlang_c_public_example() -> None:
    assert e.staff_erlang_c(LOAD, 180, service_level=0.8, threshold_s=20) == 14
    both = e.staff_erlang_c(LOAD, 180, service_level=0.8, threshold_s=20, asa_s=3)
    assert both == e.staff_erlang_c(LOAD, 180, asa_s=3) > 14


@pytest.mark.parametrize("a", [0.3, LOAD, 180.0, 2000.0])
@pytest.mark.parametrize("patience", [30.0, 120.0, 600.0])
def test_staff_erlang_a_is_the_minimum(a: float, patience: float) -> None:
    def m(n: int) -> e.ErlangA:
        return e.erlang_a(n, a, 180, patience, 20)

    n = e.staff_erlang_a(a, 180, patience, service_level=0.8, threshold_s=20)
    assert m(n).service_level >= 0.8 > m(n - 1).service_level
    n = e.staff_erlang_a(a, 180, patience, service_level=0.9, threshold_s=20, definition="answered")
    assert m(n).service_level_answered >= 0.9
    assert n == 1 or not m(n - 1).service_level_answered >= 0.9
    n = e.staff_erlang_a(a, 180, patience, abandon=0.03)
    assert m(n).p_abandon <= 0.03 < m(n - 1).p_abandon


def test_square_root_rule_is_close_for_large_centers() -> None:
    for a in (100.0, 1000.0, 9000.0):
        rule = e.square_root_staffing(a, 180, service_level=0.8, threshold_s=20)
        exact = e.staff_erlang_c(a, 180, service_level=0.8, threshold_s=20)
        assert abs(rule.agents - exact) <= 2
        assert rule.agents == math.ceil(a + rule.beta * math.sqrt(a) - 1e-9)
    # Halfin-Whitt: P(wait) = 0.5 at beta ~ 0.5, so a 50% wait target gives it.
    rule = e.square_root_staffing(10_000, 180, service_level=0.5, threshold_s=0)
    assert rule.beta == pytest.approx(0.5061, abs=1e-3)
    ga = e.square_root_staffing(2000, 180, patience_s=120, abandon=0.02)
    exact_a = e.staff_erlang_a(2000, 180, 120, abandon=0.02)
    assert abs(ga.agents - exact_a) <= 0.01 * exact_a


def test_staffing_refuses_impossible_or_missing_targets() -> None:
    with pytest.raises(ValueError, match="service_level"):
        e.staff_erlang_c(10, 180, service_level=1.0, threshold_s=20)
    with pytest.raises(ValueError, match="threshold_s"):
        e.staff_erlang_c(10, 180, service_level=0.8)
    with pytest.raises(ValueError, match="asa_s"):
        e.staff_erlang_c(10, 180, asa_s=0)
    with pytest.raises(ValueError, match="target"):
        e.staff_erlang_c(10, 180)
    with pytest.raises(ValueError, match="abandon"):
        e.staff_erlang_a(10, 180, 60, abandon=0.0)
    with pytest.raises(ValueError, match="definition"):
        e.staff_erlang_a(10, 180, 60, abandon=0.1, definition="handled")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blocking"):
        e.erlang_b_load(10, 1.0)
    with pytest.raises(ValueError, match="blocking"):
        e.staff_erlang_b(10, 0.0)
    with pytest.raises(ValueError, match="abandon"):
        e.square_root_staffing(10, 180, abandon=0.1)
    assert e.staff_erlang_c(0, 180, service_level=0.8, threshold_s=20) == 0


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: e.erlang_b(-1, 3.0), "servers"),
        (lambda: e.erlang_b(2.5, 3.0), "servers"),
        (lambda: e.erlang_b(True, 3.0), "servers"),
        (lambda: e.erlang_b(3, -1.0), "load_erlangs"),
        (lambda: e.erlang_b(3, math.nan), "load_erlangs"),
        (lambda: e.erlang_c(3, math.inf), "load_erlangs"),
        (lambda: e.service_level_c(3, 1.0, 0.0, 20), "aht_s"),
        (lambda: e.service_level_c(3, 1.0, 180, -1), "threshold_s"),
        (lambda: e.asa_c(3, 1.0, math.nan), "aht_s"),
        (lambda: e.erlang_a(3, 1.0, 180, 0.0, 20), "patience_s"),
        (lambda: e.erlang_a(3, 1.0, 180, math.nan, 20), "patience_s"),
        (lambda: e.erlang_a(3, 1.0, "x", 60, 20), "aht_s"),
        (lambda: e.offered_load(10, 0, 180), "interval_s"),
    ],
)
def test_bad_input_names_the_argument(call: Any, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------
# The command line


def _args(line: str) -> list[str]:
    return line.split()


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main(argv) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_cli_erlang_c_public_example(capsys: pytest.CaptureFixture[str]) -> None:
    argv = _args("erlang c --calls 100 --interval 30m --aht 180 --agents 14 --threshold 20")
    assert main(argv) == 0
    text = capsys.readouterr().out
    for figure in ("0.1741319", "0.8883500", "7.8359 s", "0.7142857"):
        assert figure in text
    out = _json(capsys, [*argv, "--json"])
    assert out["load_erlangs"] == pytest.approx(10.0)
    assert round(out["p_wait"], 7) == 0.1741319
    assert round(out["service_level"], 5) == 0.88835
    assert round(out["asa_s"], 4) == 7.8359
    assert out["agents"] == 14 and out["interval_s"] == 1800


def test_cli_erlang_c_target(capsys: pytest.CaptureFixture[str]) -> None:
    argv = _args("erlang c --load 10 --aht 180 --target 80/20")
    assert main(argv) == 0
    assert "fewest agents for 80% within 20 s: 14" in capsys.readouterr().out
    out = _json(capsys, [*argv, "--json"])
    assert out["agents"] == 14 and out["square_root_agents"] == 13
    assert out["service_level"] >= 0.8 and out["threshold_s"] == 20
    out = _json(capsys, _args("erlang c --load 10 --aht 180 --max-asa 3 --json"))
    assert out["agents"] == e.staff_erlang_c(10, 180, asa_s=3)


def test_cli_unstable_queue_prints_null_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, _args("erlang c --load 10 --aht 180 --agents 10 --json"))
    assert out["p_wait"] == 1.0 and out["asa_s"] is None


def test_cli_erlang_a(capsys: pytest.CaptureFixture[str]) -> None:
    argv = _args("erlang a --calls 100 --interval 30m --aht 180 --patience 120 --agents 14")
    out = _json(capsys, [*argv, "--json"])
    want = e.erlang_a(14, 10.0, 180, 120, 20)
    for key, value in want._asdict().items():
        assert out[key] == pytest.approx(value, rel=1e-12)
    argv = _args("erlang a --load 10 --aht 180 --patience 120 --target 80/20 --max-abandon 2%")
    out = _json(capsys, [*argv, "--json"])
    assert out["agents"] == e.staff_erlang_a(
        10, 180, 120, service_level=0.8, threshold_s=20, abandon=0.02
    )
    assert out["p_abandon"] <= 0.02 and out["service_level"] >= 0.8
    assert main(argv) == 0
    assert "square-root rule" in capsys.readouterr().out


def test_cli_erlang_b_three_ways(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, _args("erlang b --load 8.108 --lines 15 --json"))
    assert out["blocking"] == pytest.approx(0.01, abs=1e-6)
    out = _json(capsys, _args("erlang b --blocking 0.01 --lines 15 --json"))
    assert round(out["load_erlangs"], 3) == 8.108
    out = _json(capsys, _args("erlang b --blocking 1% --load 8.108 --json"))
    assert out["lines"] == 15
    assert main(_args("erlang b --blocking 0.01 --lines 15 --aht 180")) == 0
    assert "8.1080 Erlang" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ("erlang c --load 10 --aht 0 --agents 14", "--aht"),
        ("erlang c --load -3 --aht 180 --agents 14", "--load"),
        ("erlang c --load nan --aht 180 --agents 14", "--load"),
        ("erlang c --load 10 --agents 14", "--aht"),
        ("erlang c --load 10 --aht 180", "--agents"),
        ("erlang c --load 10 --aht 180 --agents 14 --target 80/20", "not both"),
        ("erlang c --load 10 --aht 180 --target 100/20", "--target"),
        ("erlang c --load 10 --aht 180 --target eighty", "--target"),
        ("erlang c --load 10 --aht 180 --target 80/20 --threshold 30", "--threshold"),
        ("erlang c --calls 100 --interval 3x --aht 180 --agents 14", "--interval"),
        ("erlang c --calls 100 --load 3 --aht 180 --agents 14", "--load"),
        ("erlang a --load 10 --aht 180 --agents 14", "--patience"),
        ("erlang a --load 10 --aht 180 --patience 60 --max-abandon 0", "--max-abandon"),
        ("erlang b --lines 15", "two of"),
        ("erlang b --lines 0 --load 3", "--lines"),
        ("erlang b --lines 3 --blocking 2", "--blocking"),
    ],
)
def test_cli_refuses_bad_input(capsys: pytest.CaptureFixture[str], argv: str, words: str) -> None:
    assert main(argv.split()) == 2
    captured = capsys.readouterr()
    assert words in captured.err and not captured.out
    assert "Traceback" not in captured.err


def test_docs_show_true_output(capsys: pytest.CaptureFixture[str]) -> None:
    # Every "$ agner erlang ..." in docs/ERLANG.md prints exactly what follows it.
    text = (ROOT / "docs" / "ERLANG.md").read_text()
    seen = 0
    for block in text.split("```\n")[1::2]:
        for chunk in ("\n" + block).split("\n$ ")[1:]:
            command, _, expected = chunk.partition("\n")
            assert main(shlex.split(command)[1:]) == 0, command
            assert capsys.readouterr().out.rstrip("\n") == expected.rstrip("\n"), command
            seen += 1
    assert seen >= 5


def test_readme_erlang_command_is_true(capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "README.md").read_text()
    commands = [b.split("```", 1)[0].strip() for b in text.split("```sh\n")[1:]]
    (command,) = [c for c in commands if c.startswith("agner erlang")]
    assert main(shlex.split(command)[1:]) == 0
    out = capsys.readouterr().out
    assert "0.1741319" in out and "88.84% answered within 20 s" in out and "7.8359 s" in out
