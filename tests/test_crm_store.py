"""The CRM store's interface, run on SQLite and on PostgreSQL (tests/_pg.py)."""

from __future__ import annotations

import threading
from typing import Any

import msgspec
import pytest

from agner.crm import (
    Conflict,
    Interaction,
    InvalidInput,
    NotFound,
    RoutingHints,
    StoreOptions,
    open_store,
)

pytest_plugins = ["_pg"]

T0 = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z, in microseconds
S = 1_000_000
DAY = 86_400 * S
ANN = "+33142685300"
BOB = "+33612345670"


def answered(agent: str, caller: str | None, at: int, **kw: Any) -> Interaction:
    """A voice call answered after 10 s, 60 s of talk, 5 s of wrap-up."""
    return Interaction(
        arrived_us=at,
        offered_us=at + 8 * S,
        answered_us=at + 10 * S,
        ended_us=at + 70 * S,
        wrap_up_end_us=at + 75 * S,
        outcome="answered",
        agent=agent,
        caller=caller,
        queue=kw.pop("queue", "sales"),
        **kw,
    )


def test_national_number_needs_a_region(store: Any, open_crm: Any) -> None:
    with pytest.raises(InvalidInput) as e:
        store.create_customer("acme", name="Ann", phones=["06 12 34 56 70"])
    assert e.value.field == "phone" and "no country code" in str(e.value)
    fr = open_crm(StoreOptions(default_region="FR"))
    c = fr.create_customer(
        "acme",
        name="  Ann Martin ",
        phones=["+33 1 42 68 53 00", "06 12 34 56 70", "+33142685300"],
        emails=["Ann.Martin@Example.COM"],
        tier="Gold",
        language="pt_br",
        attributes={"account": "A-17", "empty": ""},
        now_us=T0,
    )
    assert c.name == "Ann Martin"
    assert c.phones == (ANN, BOB)
    assert c.emails == ("ann.martin@example.com",)
    assert (c.tier, c.language) == ("gold", "pt-BR")
    assert c.attributes == {"account": "A-17"}
    assert (c.created_us, c.updated_us) == (T0, T0)
    assert fr.get_customer("acme", c.id) == c
    assert fr.find_customer("acme", "06 12 34 56 70") == c
    assert fr.find_customer("acme", "ANN.MARTIN@example.com") == c
    assert fr.find_customer("acme", "+33699999999") is None


def test_update_and_delete_customer(store: Any) -> None:
    c = store.create_customer("acme", name="Ann", phones=[ANN], now_us=T0)
    assert c.tier == "standard" and c.language is None
    u = store.update_customer(
        "acme", c.id, phones=[BOB], emails=["ann@example.com"], tier="platinum", now_us=T0 + S
    )
    assert (u.name, u.phones, u.emails, u.tier) == ("Ann", (BOB,), ("ann@example.com",), "platinum")
    assert u.updated_us == T0 + S and u.created_us == T0
    assert store.find_customer("acme", ANN) is None  # replaced, so free again
    assert store.lookup("acme", BOB).priority == 3
    store.record_interaction("acme", answered("joe", BOB, T0))
    store.delete_customer("acme", c.id)
    with pytest.raises(NotFound):
        store.get_customer("acme", c.id)
    with pytest.raises(NotFound):
        store.delete_customer("acme", c.id)
    assert store.lookup("acme", BOB) == RoutingHints()
    kept = store.interactions("acme")
    assert len(kept) == 1 and kept[0].customer_id is None  # kept for reports


def test_customers_pages_in_id_order(store: Any) -> None:
    ids = [
        store.create_customer("acme", name=f"c{k}", phones=[f"+3361234567{k}"]).id for k in range(5)
    ]
    first = store.customers("acme", limit=2)
    assert [c.id for c in first] == ids[:2]
    rest = store.customers("acme", after_id=first[-1].id, limit=10)
    assert [c.id for c in rest] == ids[2:]
    assert store.count("acme", "customers") == 5


def test_a_number_belongs_to_one_customer(store: Any) -> None:
    ann = store.create_customer("acme", name="Ann", phones=[ANN])
    with pytest.raises(Conflict, match=r"\+33142685300 belongs to customer"):
        store.create_customer("acme", name="Bob", phones=[BOB, ANN])
    assert store.find_customer("acme", BOB) is None  # nothing half-written
    bob = store.create_customer("acme", name="Bob", emails=["bob@example.com"])
    with pytest.raises(Conflict):
        store.update_customer("acme", bob.id, phones=[ANN])
    assert store.get_customer("acme", ann.id).phones == (ANN,)
    assert store.get_customer("acme", bob.id).phones == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Ann", "phones": ["+33 1 23"]}, "phone"),
        ({"name": "Ann", "phones": ["+1 555 0100"]}, "phone"),  # possible, not valid
        ({"name": "Ann", "phones": ["not a number"]}, "phone"),
        ({"name": "Ann", "emails": ["ann@"]}, "email"),
        ({"name": "Ann", "emails": ["ann@@example.com"]}, "email"),
        ({"name": "", "phones": [ANN]}, "name"),
        ({"name": "A" * 201, "phones": [ANN]}, "name"),
        ({"name": "Ann"}, "phones"),
        ({"name": "Ann", "phones": [ANN], "tier": "diamond"}, "tier"),
        ({"name": "Ann", "phones": [ANN], "language": "french!"}, "language"),
        ({"name": "Ann", "phones": [ANN], "attributes": {"note": "x" * 1001}}, "note"),
        ({"name": "Ann", "phones": [ANN], "attributes": {"bad key!": "x"}}, "bad key!"),
    ],
)
def test_bad_customer_input_names_the_field(store: Any, kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        store.create_customer("acme", **kwargs)
    assert e.value.field == field
    assert repr(field) in str(e.value)
    assert store.count("acme", "customers") == 0


@pytest.mark.parametrize("tenant", ["", "a b", "x" * 65, "-lead", "a;DROP TABLE customers"])
def test_bad_tenant_is_refused(store: Any, tenant: str) -> None:
    with pytest.raises(InvalidInput) as e:
        store.lookup(tenant, ANN)
    assert e.value.field == "tenant"


def test_lookup_gives_priority_language_and_preferred_agents(store: Any) -> None:
    c = store.create_customer(
        "acme", name="Ann", phones=[ANN], emails=["ann@example.com"], tier="gold", language="fr"
    )
    store.record_interactions(
        "acme",
        [
            answered("old", ANN, T0 - 100 * DAY, satisfaction=5),  # outside 90 days
            answered("cora", ANN, T0 - 3 * DAY, satisfaction=5),
            answered("dan", ANN, T0 - 2 * DAY, satisfaction=2),  # unhappy
            answered("eve", ANN, T0 - 1 * DAY, satisfaction=4),
            answered("cora", ANN, T0 - 1 * DAY - 5 * S, satisfaction=4),
            answered("fay", ANN, T0 - 1 * DAY),  # no score
            answered("gus", "+33612345671", T0, satisfaction=5),  # another caller
        ],
    )
    h = store.lookup("acme", "+33 1 42 68 53 00", now_us=T0)
    assert h == RoutingHints(
        known=True,
        customer_id=c.id,
        tier="gold",
        priority=2,
        language="fr",
        language_skill="lang_fr",
        preferred_agents=("eve", "cora"),
    )
    assert store.lookup("acme", "Ann@Example.com", now_us=T0) == h
    # Contacts that ended after `now` do not count yet.
    assert store.lookup("acme", ANN, now_us=T0 - 2 * DAY).preferred_agents == ("cora",)


def test_lookup_options(open_crm: Any) -> None:
    s = open_crm(
        StoreOptions(
            tiers={"basic": 0, "vip": 9},
            default_tier="basic",
            language_skill="speaks-{language}",
            preferred_window_s=10 * 86400,
            good_satisfaction=2,
            max_preferred_agents=1,
        )
    )
    s.create_customer("acme", name="Ann", phones=[ANN], tier="vip", language="de")
    s.record_interaction("acme", answered("dan", ANN, T0 - 2 * DAY, satisfaction=2))
    s.record_interaction("acme", answered("old", ANN, T0 - 11 * DAY, satisfaction=5))
    s.record_interaction("acme", answered("eve", ANN, T0 - 3 * DAY, satisfaction=3))
    h = s.lookup("acme", ANN, now_us=T0)
    assert (h.priority, h.language_skill, h.preferred_agents) == (9, "speaks-de", ("dan",))
    with pytest.raises(InvalidInput):
        s.create_customer("acme", name="Bob", phones=[BOB], tier="gold")


@pytest.mark.parametrize("query", ["+33699999999", "anonymous", "", "+1 555 0100", "x@"])
def test_lookup_of_unknown_or_malformed_caller_is_unknown(store: Any, query: str) -> None:
    store.create_customer("acme", name="Ann", phones=[ANN])
    assert store.lookup("acme", query) == RoutingHints()
    assert store.count("acme", "leads") == 0  # a look-up writes nothing


def test_screen_pop_of_a_customer(store: Any) -> None:
    c = store.create_customer("acme", name="Ann", phones=[ANN], tier="silver")
    for k in range(7):
        store.record_interaction("acme", answered(f"a{k}", ANN, T0 + k * DAY, satisfaction=5))
    pop = store.screen_pop("acme", ANN, now_us=T0 + 7 * DAY)
    assert pop.kind == "customer" and pop.query == ANN
    assert pop.customer == c
    assert pop.hints is not None and pop.hints.preferred_agents == ("a6", "a5", "a4")
    assert [i.agent for i in pop.interactions] == ["a6", "a5", "a4", "a3", "a2"]
    assert pop.lead is None and pop.form is None
    assert msgspec.json.decode(msgspec.json.encode(pop), type=type(pop)) == pop


def test_unknown_caller_becomes_a_lead_then_a_customer(store: Any) -> None:
    pop = store.screen_pop("acme", "+33 6 12 34 56 71", now_us=T0)
    assert pop.kind == "new_lead" and pop.customer is None
    assert pop.lead is not None and pop.lead.phone == "+33612345671"
    assert pop.form is not None and pop.form.lead_id == pop.lead.id
    assert pop.form.tiers == ("standard", "silver", "gold", "platinum")
    again = store.screen_pop("acme", "+33612345671", now_us=T0 + S)
    assert again.lead == pop.lead  # one open lead per number
    rec = store.record_interaction("acme", answered("joe", "+33612345671", T0))
    assert (rec.lead_id, rec.customer_id) == (pop.lead.id, None)
    store.update_lead("acme", pop.lead.id, name="Zoe", notes="wants a quote")
    c = store.convert_lead("acme", pop.lead.id, emails=["zoe@example.com"], tier="silver")
    assert (c.name, c.phones, c.emails, c.tier) == (
        "Zoe",
        ("+33612345671",),
        ("zoe@example.com",),
        "silver",
    )
    assert store.get_lead("acme", pop.lead.id).converted_to == c.id
    assert store.leads("acme") == []
    assert [x.id for x in store.leads("acme", open_only=False)] == [pop.lead.id]
    assert [i.id for i in store.interactions("acme", customer_id=c.id)] == [rec.id]
    with pytest.raises(Conflict):
        store.convert_lead("acme", pop.lead.id, name="Zoe")
    nxt = store.screen_pop("acme", "+33612345671")
    assert nxt.kind == "customer" and nxt.customer == c
    assert [i.id for i in nxt.interactions] == [rec.id]


def test_withheld_number_pops_a_form_without_a_lead(store: Any) -> None:
    pop = store.screen_pop("acme", "anonymous")
    assert pop.kind == "new_lead" and pop.lead is None
    assert pop.form is not None and pop.form.lead_id is None
    assert store.count("acme", "leads") == 0


def test_creating_a_customer_converts_the_matching_lead(store: Any) -> None:
    lead = store.create_lead("acme", email="Zoe@Example.com", now_us=T0)
    assert lead.email == "zoe@example.com"
    rec = store.record_interaction(
        "acme",
        Interaction(
            arrived_us=T0,
            ended_us=T0 + 30 * S,
            outcome="abandoned",
            channel="email",
            caller="zoe@example.com",
        ),
    )
    assert rec.lead_id == lead.id
    with pytest.raises(Conflict):
        store.create_lead("acme", email="zoe@example.com")
    c = store.create_customer("acme", name="Zoe", emails=["zoe@example.com"])
    assert store.get_lead("acme", lead.id).converted_to == c.id
    assert store.get_interaction("acme", rec.id).customer_id == c.id
    with pytest.raises(Conflict):
        store.create_lead("acme", email="zoe@example.com")  # now a customer's


def test_lead_crud(store: Any) -> None:
    with pytest.raises(InvalidInput):
        store.create_lead("acme", name="nobody")
    lead = store.create_lead("acme", phone=BOB, name="Bob", notes="n", now_us=T0)
    assert (lead.phone, lead.name, lead.notes, lead.created_us) == (BOB, "Bob", "n", T0)
    assert store.update_lead("acme", lead.id, notes=None).notes is None
    rec = store.record_interaction("acme", answered("joe", BOB, T0))
    assert rec.lead_id == lead.id
    store.delete_lead("acme", lead.id)
    with pytest.raises(NotFound):
        store.get_lead("acme", lead.id)
    assert store.get_interaction("acme", rec.id).lead_id is None


def test_interaction_round_trip(store: Any) -> None:
    c = store.create_customer("acme", name="Ann", phones=[ANN])
    i = Interaction(
        ref="call-1",
        channel="voice",
        caller="+33 1 42 68 53 00",
        called="+44 20 7946 0018",
        queue="sales",
        agent="joe",
        outcome="answered",
        arrived_us=T0,
        offered_us=T0 + 4 * S,
        answered_us=T0 + 6 * S,
        ended_us=T0 + 100 * S,
        wrap_up_end_us=T0 + 130 * S,
        disposition="sale",
        satisfaction=5,
        notes="upgrade",
        recording="s3://rec/call-1.opus",
    )
    r = store.record_interaction("acme", i)
    assert r.id is not None
    assert (r.caller, r.called) == (ANN, "+442079460018")
    assert (r.wait_us, r.talk_us, r.wrap_up_us) == (6 * S, 94 * S, 30 * S)
    assert r.customer_id == c.id and r.lead_id is None
    assert store.get_interaction("acme", r.id) == r
    # The same ref again (a replayed journal): stored once.
    assert store.record_interaction("acme", i) == r
    assert store.count("acme", "interactions") == 1
    u = store.update_interaction("acme", r.id, satisfaction=2, notes=None)
    assert (u.satisfaction, u.notes, u.disposition) == (2, None, "sale")
    assert store.get_interaction("acme", r.id) == u
    with pytest.raises(InvalidInput):
        store.update_interaction("acme", r.id, satisfaction=6)


def test_interactions_filters_newest_first(store: Any) -> None:
    recs = store.record_interactions(
        "acme", [answered("joe", None, T0 + k * DAY) for k in range(4)]
    )
    assert all(r.customer_id is None and r.lead_id is None for r in recs)
    got = store.interactions("acme", since_us=T0 + DAY, until_us=T0 + 3 * DAY)
    assert [r.id for r in got] == [recs[2].id, recs[1].id]
    assert len(store.interactions("acme", limit=3)) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"answered_us": None}, "answered_us"),  # answered without an answer time
        ({"ended_us": 1}, "ended_us"),  # ends before it arrives
        ({"wrap_up_end_us": 2}, "wrap_up_end_us"),
        ({"agent": None}, "agent"),
        ({"satisfaction": 0}, "satisfaction"),
        ({"caller": "+33 1"}, "caller"),
        ({"called": "nope@"}, "called"),
        ({"channel": "fax"}, "channel"),
        ({"outcome": "lost"}, "outcome"),
        ({"notes": "x" * 10_001}, "notes"),
        ({"queue": "q" * 129}, "queue"),
        ({"talk_us": 1}, "talk_us"),  # computed, and not 1
        ({"arrived_us": -5}, "arrived_us"),
    ],
)
def test_bad_interaction_names_the_field(store: Any, change: Any, field: str) -> None:
    good = answered("joe", ANN, T0)
    with pytest.raises(InvalidInput) as e:
        store.record_interactions("acme", [good, msgspec.structs.replace(good, **change)])
    assert e.value.field == field and e.value.row == 2
    assert store.count("acme", "interactions") == 0  # all or nothing


def test_interaction_links_must_exist_in_the_tenant(store: Any) -> None:
    other = store.create_customer("globex", name="Ann", phones=[ANN])
    with pytest.raises(NotFound):
        store.record_interaction("acme", answered("joe", None, T0, customer_id=other.id))
    with pytest.raises(NotFound):
        store.record_interaction("acme", answered("joe", None, T0, lead_id=12345))
    assert store.count("acme", "interactions") == 0


def test_tenants_are_isolated(store: Any) -> None:
    a = store.create_customer("acme", name="Ann", phones=[ANN], tier="gold")
    g = store.create_customer("globex", name="Gail", phones=[ANN], tier="silver")
    assert a.id != g.id
    assert store.lookup("acme", ANN).customer_id == a.id
    assert store.lookup("globex", ANN).customer_id == g.id
    assert store.lookup("initech", ANN) == RoutingHints()
    for fn in (store.get_customer, store.delete_customer, store.update_customer):
        with pytest.raises(NotFound):
            fn("acme", g.id)
    lead = store.create_lead("globex", phone=BOB)
    rec = store.record_interaction("globex", answered("zed", ANN, T0, satisfaction=5))
    for fn, arg in [
        (store.get_lead, lead.id),
        (store.delete_lead, lead.id),
        (store.convert_lead, lead.id),
        (store.get_interaction, rec.id),
        (store.update_interaction, rec.id),
    ]:
        with pytest.raises(NotFound):
            fn("acme", arg)
    assert store.lookup("acme", ANN, now_us=T0 + DAY).preferred_agents == ()
    assert store.lookup("globex", ANN, now_us=T0 + DAY).preferred_agents == ("zed",)
    assert store.customers("acme") == [a]
    assert store.leads("acme") == [] and store.interactions("acme") == []
    assert store.interactions("acme", customer_id=g.id) == []
    assert store.report("acme").rows == ()
    assert store.screen_pop("acme", BOB).lead != lead  # acme's own new lead
    assert store.get_customer("globex", g.id).name == "Gail"
    assert (store.count("acme", "customers"), store.count("globex", "customers")) == (1, 1)


def test_store_is_usable_from_threads(store: Any) -> None:
    store.create_customer("acme", name="Ann", phones=[ANN], tier="gold")
    errors: list[BaseException] = []
    hits: list[int] = []

    def work(n: int) -> None:
        try:
            for k in range(20):
                hits.append(store.lookup("acme", ANN).priority)
                store.record_interaction("acme", answered(f"t{n}", ANN, T0 + k * S, ref=f"{n}-{k}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert hits == [2] * 80
    assert store.count("acme", "interactions") == 80


def test_closed_store_refuses(store_url: str) -> None:
    s = open_store(store_url)
    s.close()
    with pytest.raises(Exception, match="closed"):
        s.lookup("acme", ANN)


def test_store_url_errors(tmp_path: Any) -> None:
    with pytest.raises(InvalidInput, match="store URL"):
        open_store("mysql://localhost/crm")
    with pytest.raises(InvalidInput, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/missing/crm.db")
    with pytest.raises(InvalidInput):
        open_store("sqlite:///:memory:")
    with pytest.raises(InvalidInput, match="default_tier"):
        open_store(f"sqlite:///{tmp_path}/crm.db", StoreOptions(default_tier="gold", tiers={}))


def test_many_interactions_in_one_call(store: Any) -> None:
    # 1,100 records: on PostgreSQL a bulk load (statements planned afresh).
    c = store.create_customer("acme", name="Ann", phones=[ANN])
    recs = store.record_interactions(
        "acme",
        [answered(f"a{k % 7}", ANN, T0 + k * S, satisfaction=5, ref=f"r{k}") for k in range(1_100)],
    )
    assert len({r.id for r in recs}) == 1_100
    assert all(r.customer_id == c.id for r in recs)
    assert store.count("acme", "interactions") == 1_100
    h = store.lookup("acme", ANN, now_us=T0 + 2_000 * S)
    assert h.preferred_agents == ("a0", "a6", "a5")  # ended last: k = 1099, 1098, 1097
