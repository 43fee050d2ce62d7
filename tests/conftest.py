"""Shared fixtures: every semantics test runs against the Cython core and the reference."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The reference router sits beside the tests (no package): make it importable
# whatever import mode pytest runs in.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from reference_router import ReferenceRouter  # noqa: E402


@pytest.fixture(params=["core", "reference"])
def make_router(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """A factory ``(seed=0) -> router`` for the Cython core or the reference router."""
    if request.param == "core":
        from agner import Router

        cls: Any = Router
    else:
        cls = ReferenceRouter

    def make(seed: int = 0) -> Any:
        return cls(seed=seed)

    return make


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a local Dask cluster on 127.0.0.1 (two worker processes)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address
