"""Embedding agner's router in your own application.

Two queues, three agents; a contact arrives, is offered, answered and completed,
and another one waits for the right agent. Run it: python examples/embed_router.py
"""

from agner import AgentState, DecisionKind, Router, Strategy

SECOND = 1_000_000  # the router counts time in integer microseconds

SALES, SUPPORT = 0, 1  # skill ids: yours to choose

router = Router(seed=42)
sales = router.add_queue({SALES: 3}, strategy=Strategy.LONGEST_IDLE, priority=1)
support = router.add_queue({SUPPORT: 1}, strategy=Strategy.MOST_SKILLED)

ann = router.add_agent({SALES: 5}, wrap_up_us=10 * SECOND)
bob = router.add_agent({SUPPORT: 4, SALES: 2})
cat = router.add_agent({SUPPORT: 2})
for agent in (ann, bob, cat):
    router.login(agent, 0)
router.set_ready(ann, 1 * SECOND)
router.set_ready(bob, 2 * SECOND)

# A sales call: Ann is the only ready agent with sales >= 3.
call = router.arrive(sales, 10 * SECOND)
(offer,) = router.take_decisions()
assert offer.kind == DecisionKind.OFFER and offer.agent == ann
print(f"t=10s  offer call {call} to agent {offer.agent} (ann)")
router.accept(ann, call, 12 * SECOND)
router.complete(ann, call, 100 * SECOND)  # Ann goes to 10 s of wrap-up
print(
    f"t=100s ann is {router.agent_state(ann).name}, next deadline "
    f"{router.next_deadline() / SECOND:g} s"
)

# A support chat: Bob (support 4) is more skilled than Cat, but Cat is not ready.
chat = router.arrive(support, 101 * SECOND)
(offer,) = router.take_decisions()
print(f"t=101s offer chat {chat} to agent {offer.agent} (bob)")
router.accept(bob, chat, 101 * SECOND)

# A second sales call waits: Ann is in wrap-up, Bob busy, Cat lacks sales.
call2 = router.arrive(sales, 105 * SECOND)
assert router.take_decisions() == []
router.advance(110 * SECOND)  # Ann's wrap-up ends: she gets the waiting call
decisions = router.take_decisions()
print("t=110s", ", ".join(f"{d.kind.name} agent={d.agent}" for d in decisions))
assert decisions[-1].agent == ann and router.agent_state(ann) == AgentState.RESERVED

stats = router.queue_stats(sales, 110 * SECOND)
print(
    f"sales: offered {stats.offered}, answered {stats.answered}, "
    f"waiting {stats.waiting}, ASA {stats.asa_us / SECOND:.1f} s, "
    f"service level (answered within 20 s / answered) {stats.service_level_answered:.0%}"
)
