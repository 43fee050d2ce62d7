"""The routing configuration: one schema for serve and simulate, and the Router it builds."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from agner import AgentState
from agner.config import (
    AgentGroupSpec,
    ConfigFileError,
    Queue,
    RoutingConfig,
    build_router,
    check_routing,
)
from agner.sim import scenario

ROOT = Path(__file__).resolve().parent.parent


def test_scenario_routing_part_is_the_config_schema() -> None:
    assert scenario.Queue is Queue
    assert issubclass(scenario.ScenarioError, ConfigFileError)


def test_build_router_from_multiskill_example() -> None:
    cfg = msgspec.toml.decode((ROOT / "examples" / "multiskill.toml").read_bytes(), type=dict)
    routing = msgspec.convert(
        {"queues": cfg["queues"], "agent_groups": cfg["agent_groups"]}, RoutingConfig
    )
    check_routing(routing)
    router, ids = build_router(routing, seed=3)
    assert ids.queues == ["sales", "support", "billing"]
    assert ids.skills == {"sales": 0, "billing": 1, "support": 2}
    assert router.n_queues == 3
    assert router.n_agents == 14 + 26 + 10 + 6 == len(ids.agents)
    assert ids.agents[0] == "sales-1" and ids.agents[14] == "support-1"
    assert ids.agent_id["floaters-6"] == router.n_agents - 1
    assert router.agent_state(0) is AgentState.LOGGED_OUT
    # sales needs sales >= 3: a billing-support agent is never offered it
    bs = ids.agent_id["billing-support-1"]
    router.login(bs, 0)
    router.set_ready(bs, 0)
    router.arrive(ids.queue_id["sales"], 1)
    assert router.take_decisions() == []
    router.arrive(ids.queue_id["billing"], 2)
    (offer,) = router.take_decisions()
    assert (offer.agent, offer.queue) == (bs, ids.queue_id["billing"])


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ([], "at least one queue"),
        ([{"name": "a"}, {"name": "a"}], "unique"),
        ([{"name": "a", "strategy": "fastest"}], "unknown strategy"),
        ([{"name": "a", "require": {"x": 1}}], "which no agent group has"),
        ([{"name": "a", "require": {"s": 9}}], "no agent group can ever serve"),
    ],
)
def test_check_routing_names_the_field(queues: list[dict[str, object]], message: str) -> None:
    cfg = msgspec.convert(
        {"queues": queues, "agent_groups": [{"name": "g", "count": 2, "skills": {"s": 5}}]},
        RoutingConfig,
    )
    with pytest.raises(ConfigFileError, match=message):
        check_routing(cfg)


def test_multi_channel_groups_reach_the_router() -> None:
    from agner import Channel

    cfg = RoutingConfig(
        queues=[Queue(name="chat", require={"web": 1})],
        agent_groups=[
            AgentGroupSpec(
                name="digital", count=1, skills={"web": 1}, capacity={"chat": 3, "email": 2}
            )
        ],
    )
    check_routing(cfg)
    router, ids = build_router(cfg)
    a = ids.agent_id["digital-1"]
    router.login(a, 0)
    router.set_ready(a, 0)
    for t in range(3):
        router.arrive(ids.queue_id["chat"], t + 1, channel=Channel.CHAT)
        (d,) = router.take_decisions()
        router.accept(a, d.contact, t + 1)
    assert router.agent_load(a) == (0, 3, 0, 0)


def test_bad_capacities_are_refused_by_name() -> None:
    bad = RoutingConfig(
        queues=[Queue(name="q")],
        agent_groups=[AgentGroupSpec(name="g", count=1, capacity={"pigeon": 1})],
    )
    with pytest.raises(ConfigFileError, match=r"agent_groups\[0\] \(g\).capacity.pigeon"):
        check_routing(bad)
