"""The browser pages of ``agner serve`` in headless Chromium (Debian's chromium,
driven by Playwright): an agent logs in on /desktop, receives contacts with the
screen pop of the right customer (or the new-lead form), completes them, and the
supervisor's /wallboard follows, pushed by the server."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_harness import ACME, ANN, CENTER, GLOBEX, ServerProcess
from test_serve_transports import Tcp, hello

from agner import protocol as p
from agner.crm import open_store

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect  # noqa: E402

ADA = "+33142685300"
UNKNOWN = "+33142685399"
DOCS = Path(__file__).resolve().parent.parent / "docs"
# AGNER_SCREENSHOTS=1: the tests also write docs/desktop.png and docs/wallboard.png
SCREENSHOTS = os.environ.get("AGNER_SCREENSHOTS", "") not in ("", "0")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with open_store(f"sqlite:///{tmp_path / 'crm.db'}") as store:
        store.create_customer(
            "acme",
            name="Ada Lovelace",
            phones=[ADA, "+33142685302"],
            tier="gold",
            language="en",
            attributes={"account": "A-1815"},
        )
    cfg = tmp_path / "center.toml"  # ann (acme-sales) takes sales only: the load waits
    cfg.write_text(CENTER.read_text().replace("{ sales = 5, support = 1 }", "{ sales = 5 }"))
    srv = ServerProcess(cfg, tmp_path).start()
    yield srv
    assert srv.stop() == 0


def page(browser: Browser, srv: ServerProcess, path: str, token: str) -> Page:
    pg = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(f"http://{srv.http}{path}#token={token}")
    expect(pg.locator("#status")).to_have_text("live")
    assert errors == []
    return pg


def cell(board: Page, queue: str, column: str) -> object:
    return board.locator(f'#queues tr[data-queue="{queue}"] .{column}')


def agents(board: Page, state: str) -> object:
    return board.locator(f'#agents [data-state="{state}"] .count')


def connect_of(switch: Tcp, call_id: str) -> p.Connect:
    while True:
        m = switch.recv()
        if isinstance(m, p.Connect) and m.call_id == call_id:
            return m
        assert isinstance(m, p.Ok | p.Connect), m


def test_screen_pop_complete_and_the_wallboard_follows(
    browser: Browser, server: ServerProcess
) -> None:
    board = page(browser, server, "/wallboard", ACME)
    desk = page(browser, server, "/desktop", ANN)
    expect(board.locator("#tenant")).to_have_text("acme")
    expect(board.locator("#queues tbody tr")).to_have_count(2)  # sales, support
    expect(cell(board, "sales", "offered")).to_have_text("0")
    expect(agents(board, "logged_out")).to_have_text("81")
    expect(desk.locator("#agent")).to_have_text("ann")

    desk.click("#login")
    expect(desk.locator("#state")).to_have_attribute("data-state", "not_ready")
    expect(agents(board, "not_ready")).to_have_text("1")
    desk.click("#ready")
    expect(desk.locator("#state")).to_have_attribute("data-state", "ready")
    expect(agents(board, "ready")).to_have_text("1")

    # a load through the switch: support has no agent, its callers wait
    switch = hello(server, switch=True)
    for i in range(6):
        switch.send(p.Arrived(f"s{i}", "support", customer=f"+3314268540{i}", ref=100 + i))
    expect(cell(board, "support", "waiting")).to_have_text("6")
    expect(cell(board, "support", "longest")).to_have_text(re.compile(r"^\d+s$"))

    switch.send(p.Arrived("ada-1", "sales", customer=ADA, data={"ivr": "billing"}, ref=1))
    assert connect_of(switch, "ada-1").agent == "ann"
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")
    expect(desk.locator("#pop .tier")).to_have_text("gold")
    expect(desk.locator("#pop .attributes")).to_contain_text("A-1815")
    assert "null" not in desk.locator("#pop").inner_text()  # no e-mail: nothing shown
    expect(desk.locator("#call-id")).to_have_text("ada-1")
    expect(desk.locator("#ivr")).to_contain_text("billing")
    expect(desk.locator("#state")).to_have_attribute("data-state", "reserved")
    expect(agents(board, "reserved")).to_have_text("1")
    expect(cell(board, "sales", "offered")).to_have_text("1")

    desk.click("#accept")
    expect(desk.locator("#state")).to_have_attribute("data-state", "busy")
    expect(agents(board, "busy")).to_have_text("1")
    desk.select_option("#disposition", "sale")
    desk.select_option("#satisfaction", "5")
    desk.fill("#notes", "wants the blue one")
    desk.click("#complete")
    expect(desk.locator("#contact")).to_be_hidden()
    expect(cell(board, "sales", "answered")).to_have_text("1")
    expect(cell(board, "sales", "sl")).to_have_text("100%")
    expect(cell(board, "sales", "sl")).to_have_class("sl sl-ok")
    expect(agents(board, "ready")).to_have_text("1")  # wrap-up 0 s: ready again
    # the intraday chart: the records reach the store, the chart asks again
    expect(board.locator('.chart[data-queue="sales"] rect.bar')).to_have_count(1)

    # an abandoned caller pulls the sales service level under its target
    desk.select_option("#reason", "2")
    desk.click("#not-ready")
    expect(desk.locator("#state")).to_have_attribute("data-state", "not_ready")
    switch.send(p.Arrived("gone", "sales", ref=2))
    switch.send(p.HungUp("gone", ref=3))
    expect(cell(board, "sales", "sl")).to_have_text("50%")
    expect(cell(board, "sales", "sl")).to_have_class("sl sl-bad")
    expect(cell(board, "sales", "abandoned")).to_have_text("1 (50%)")
    if SCREENSHOTS:
        board.screenshot(path=str(DOCS / "wallboard.png"), full_page=True)
    switch.close()
    board.close()
    desk.close()
    assert server.stop() == 0
    with open_store(f"sqlite:///{server.data / 'crm.db'}") as store:
        (rec,) = [r for r in store.interactions("acme") if r.ref and r.ref.startswith("ada-1@")]
    assert (rec.agent, rec.disposition, rec.satisfaction) == ("ann", "sale", 5)
    assert rec.notes == "wants the blue one"
    assert rec.customer_id is not None


def login_ready(desk: Page) -> None:
    desk.click("#login")
    expect(desk.locator("#state")).to_have_attribute("data-state", "not_ready")
    desk.click("#ready")
    expect(desk.locator("#state")).to_have_attribute("data-state", "ready")


def accept_complete(desk: Page, switch: Tcp, call_id: str) -> None:
    expect(desk.locator("#call-id")).to_have_text(call_id)
    desk.click("#accept")
    expect(desk.locator("#wrapup")).to_be_visible()
    desk.click("#complete")
    expect(desk.locator("#contact")).to_be_hidden()


def test_unknown_caller_new_lead_form_then_their_record_pops(
    browser: Browser, server: ServerProcess
) -> None:
    desk = page(browser, server, "/desktop", ANN)
    login_ready(desk)
    switch = hello(server, switch=True)
    switch.send(p.Arrived("new-1", "sales", customer=UNKNOWN, ref=1))
    expect(desk.locator("#pop")).to_have_attribute("data-kind", "new_lead")
    expect(desk.locator("#lead-phone")).to_have_value(UNKNOWN)
    desk.fill("#lead-name", "Grace Hopper")
    desk.fill("#lead-email", "grace@example.com")
    desk.select_option("#lead-tier", "silver")
    desk.fill("#lead-notes", "asked about the annual plan")
    desk.click("#save-lead")
    expect(desk.locator("#save-lead")).to_have_text("Saved")
    accept_complete(desk, switch, "new-1")
    # wrap-up of 0 s: the server says the agent is ready again
    expect(desk.locator("#state")).to_have_attribute("data-state", "ready")

    # the interaction record reaches the store (in batches, every 200 ms) ...
    with open_store(f"sqlite:///{server.data / 'crm.db'}") as store:
        deadline = time.monotonic() + 5
        while not store.interactions("acme") and time.monotonic() < deadline:
            time.sleep(0.05)
        (rec,) = store.interactions("acme")
        assert (rec.ref or "").startswith("new-1@") and rec.agent == "ann"
    # ... and the caller's next contact pops the customer they became
    switch.send(p.Arrived("new-2", "sales", customer=UNKNOWN, ref=2))
    expect(desk.locator("#pop")).to_have_attribute("data-kind", "customer")
    expect(desk.locator("#pop #customer-name")).to_have_text("Grace Hopper")
    expect(desk.locator("#pop .tier")).to_have_text("silver")
    expect(desk.locator("#pop .history tbody tr")).to_have_count(1)  # the first call
    expect(desk.locator("#pop .history")).to_contain_text("ann")
    switch.close()
    desk.close()


def test_callbacks_show_the_number_and_click_to_dial_comes_back(
    browser: Browser, server: ServerProcess
) -> None:
    desk = page(browser, server, "/desktop", ANN)
    desk.click("#login")
    expect(desk.locator("#state")).to_have_attribute("data-state", "not_ready")
    switch = hello(server, switch=True)
    switch.send(p.Arrived("cb-1", "sales", customer=ADA, ref=1))
    switch.send(p.CallbackRequest("cb-1", "+33142685302", ref=2))
    switch.send(p.HungUp("cb-1", ref=3))  # the caller leaves the line, keeps the place
    assert [switch.recv() for _ in range(3)] == [p.Ok(1), p.Ok(2), p.Ok(3)]
    desk.click("#ready")
    expect(desk.locator("#channel")).to_have_text("callback")
    expect(desk.locator("#dial-number")).to_have_text("+33142685302")
    expect(desk.locator("#dial-number")).to_have_attribute("href", "tel:+33142685302")
    assert connect_of(switch, "cb-1").dial == "+33142685302"
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")
    desk.click("#accept")
    # click-to-dial from the customer's record: the call is held for this agent
    desk.click('#pop .click-to-dial[data-number="+33142685302"]')
    expect(desk.locator("#log")).to_contain_text("dialing +33142685302 (out-1)")
    if SCREENSHOTS:
        desk.fill("#notes", "call back next week about the upgrade")
        desk.select_option("#satisfaction", "4")
        desk.screenshot(path=str(DOCS / "desktop.png"), full_page=True)
    desk.click("#complete")
    expect(desk.locator("#call-id")).to_have_text("out-1")
    expect(desk.locator("#channel")).to_have_text("voice")
    expect(desk.locator("#dial-number")).to_have_text("+33142685302")
    out = connect_of(switch, "out-1")
    assert (out.agent, out.dial) == ("ann", "+33142685302")
    switch.close()
    desk.close()


def test_pages_show_only_what_their_token_may_see(browser: Browser, server: ServerProcess) -> None:
    acme = page(browser, server, "/wallboard", ACME)
    globex = page(browser, server, "/wallboard", GLOBEX)
    expect(globex.locator("#tenant")).to_have_text("globex")
    expect(globex.locator("#queues tbody tr")).to_have_count(1)
    expect(globex.locator("#queues tbody th")).to_have_text("billing")
    expect(globex.locator("#agents .count")).to_have_text(["0", "0", "0", "0", "0", "21"])
    switch = hello(server, switch=True)
    switch.send(p.Arrived("a-1", "sales", ref=1))
    expect(cell(acme, "sales", "waiting")).to_have_text("1")
    expect(globex.locator("#queues tbody tr")).to_have_count(1)
    for text in ("sales", "support", "a-1"):
        assert text not in globex.locator("#board").inner_text()
    expect(cell(globex, "billing", "offered")).to_have_text("0")

    # an agent's token opens no wallboard; a tenant's token no desktop
    for path, token in [("/wallboard", ANN), ("/desktop", ACME)]:
        pg = browser.new_page()
        pg.goto(f"http://{server.http}{path}#token={token}")
        expect(pg.locator("#status")).to_contain_text("forbidden")
        expect(pg.locator("#signin")).to_be_visible()
        pg.close()
    pg = browser.new_page()
    pg.goto(f"http://{server.http}/desktop#token=not-a-token")
    expect(pg.locator("#status")).to_contain_text("unauthorized")
    expect(pg.locator("#desk")).to_be_hidden()
    switch.close()
    for each in (pg, acme, globex):
        each.close()


def state_of(desk: Page, state: str) -> None:
    expect(desk.locator("#state")).to_have_attribute("data-state", state)


def test_the_desktop_follows_the_switch_answer_hang_up_transfer_and_abandon(
    browser: Browser, server: ServerProcess
) -> None:
    desk = page(browser, server, "/desktop", ANN)
    login_ready(desk)
    switch = hello(server, switch=True)
    switch.send(p.Arrived("ada-2", "sales", customer=ADA, ref=1))
    assert connect_of(switch, "ada-2").agent == "ann"
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")
    expect(desk.locator("#phase")).to_have_text("offered")
    expect(desk.locator("#wrapup")).to_be_hidden()
    switch.send(p.Answered("ada-2"))  # the agent picked up the phone
    state_of(desk, "busy")
    expect(desk.locator("#contact")).to_have_attribute("data-phase", "active")
    expect(desk.locator("#phase")).to_have_text("talking")
    expect(desk.locator("#accept")).to_be_hidden()
    expect(desk.locator("#wrapup")).to_be_visible()
    expect(desk.locator("#timer")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=5000)
    switch.send(p.HungUp("ada-2"))  # the caller hangs up: the disposition is owed
    expect(desk.locator("#contact")).to_have_attribute("data-phase", "ended")
    expect(desk.locator("#phase")).to_have_text("caller hung up")
    expect(desk.locator("#hung-up")).to_be_visible()
    expect(desk.locator("#wrapup")).to_be_visible()
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")
    state_of(desk, "ready")  # the group's wrap-up is 0 s
    desk.select_option("#disposition", "follow-up")
    desk.fill("#notes", "line dropped, call back")
    desk.click("#complete")
    expect(desk.locator("#contact")).to_be_hidden()

    switch.send(p.Arrived("t-1", "sales", ref=2))
    expect(desk.locator("#call-id")).to_have_text("t-1")
    switch.send(p.Answered("t-1"))
    expect(desk.locator("#phase")).to_have_text("talking")
    switch.send(p.Transfer("t-1", "support"))  # support has no agent: it waits there
    expect(desk.locator("#contact")).to_be_hidden()
    expect(desk.locator("#log")).to_contain_text("t-1 transferred to support")
    state_of(desk, "ready")

    switch.send(p.Arrived("gone", "sales", ref=3))
    expect(desk.locator("#call-id")).to_have_text("gone")
    state_of(desk, "reserved")
    switch.send(p.HungUp("gone"))  # abandoned while it rang
    expect(desk.locator("#contact")).to_be_hidden()
    expect(desk.locator("#log")).to_contain_text("gone withdrawn (abandoned)")
    state_of(desk, "ready")

    switch.send(p.Arrived("next-1", "sales", ref=40))
    expect(desk.locator("#call-id")).to_have_text("next-1")
    switch.send(p.Answered("next-1"))
    switch.send(p.HungUp("next-1"))
    expect(desk.locator("#hung-up")).to_be_visible()
    switch.send(p.Arrived("next-2", "sales", ref=41))  # wrap-up 0 s: it comes at once
    expect(desk.locator("#call-id")).to_have_text("next-2")
    expect(desk.locator("#log li.error")).to_contain_text("next-1 closed without a disposition")
    switch.send(p.HungUp("next-2"))
    expect(desk.locator("#contact")).to_be_hidden()

    switch.send(p.Arrived("late", "sales", ref=4))
    expect(desk.locator("#call-id")).to_have_text("late")
    switch.send(p.NoAnswer("late"))  # ring-no-answer: not ready
    expect(desk.locator("#contact")).to_be_hidden()
    state_of(desk, "not_ready")
    expect(desk.locator("#state")).to_have_text("not ready: no answer")
    switch.close()
    desk.close()
    assert server.stop() == 0
    with open_store(f"sqlite:///{server.data / 'crm.db'}") as store:
        (rec,) = [r for r in store.interactions("acme") if (r.ref or "").startswith("ada-2@")]
    assert (rec.agent, rec.disposition, rec.notes) == (
        "ann",
        "follow-up",
        "line dropped, call back",
    )


def test_a_reloaded_desktop_or_a_second_tab_shows_where_the_agent_stands(
    browser: Browser, server: ServerProcess
) -> None:
    desk = page(browser, server, "/desktop", ANN)
    switch = hello(server, switch=True)

    def reload() -> None:
        desk.reload()
        expect(desk.locator("#status")).to_have_text("live")

    reload()  # the token stays in the tab's sessionStorage
    state_of(desk, "logged_out")
    desk.click("#login")
    desk.select_option("#reason", "2")
    desk.click("#not-ready")
    expect(desk.locator("#state")).to_have_text("not ready: Lunch")
    reload()
    state_of(desk, "not_ready")
    expect(desk.locator("#state")).to_have_text("not ready: Lunch")
    expect(desk.locator("#since")).to_have_text(re.compile(r"^0:0\d$"))
    desk.click("#ready")
    reload()
    state_of(desk, "ready")
    expect(desk.locator("#contact")).to_be_hidden()

    # ringing, with the screen pop; a second tab shows the same
    switch.send(p.Arrived("r-1", "sales", customer=ADA, data={"ivr": "billing"}, ref=1))
    expect(desk.locator("#call-id")).to_have_text("r-1")
    reload()
    state_of(desk, "reserved")
    expect(desk.locator("#call-id")).to_have_text("r-1")
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")
    expect(desk.locator("#ivr")).to_contain_text("billing")
    expect(desk.locator("#accept")).to_be_visible()
    tab = page(browser, server, "/desktop", ANN)
    expect(tab.locator("#call-id")).to_have_text("r-1")
    expect(tab.locator("#pop #customer-name")).to_have_text("Ada Lovelace")

    # answered (accepted in the first tab): talking, in both; the notes survive a reload
    desk.click("#accept")
    expect(tab.locator("#phase")).to_have_text("talking")
    desk.fill("#notes", "asked for the invoice")
    reload()
    state_of(desk, "busy")
    expect(desk.locator("#phase")).to_have_text("talking")
    expect(desk.locator("#timer")).to_have_text(re.compile(r"^0:\d\d$"))
    expect(desk.locator("#wrapup")).to_be_visible()
    expect(desk.locator("#notes")).to_have_value("asked for the invoice")
    expect(desk.locator("#pop #customer-name")).to_have_text("Ada Lovelace")

    # the caller hung up: the wrap-up form, still owed after a reload
    switch.send(p.HungUp("r-1"))
    expect(tab.locator("#hung-up")).to_be_visible()
    reload()
    expect(desk.locator("#contact")).to_have_attribute("data-phase", "ended")
    expect(desk.locator("#hung-up")).to_be_visible()
    expect(desk.locator("#notes")).to_have_value("asked for the invoice")
    desk.select_option("#disposition", "resolved")
    desk.click("#complete")
    expect(desk.locator("#contact")).to_be_hidden()
    expect(tab.locator("#contact")).to_be_hidden()  # the other tab sees it done too

    # wrap-up (30 s, given by the CRM application's complete)
    switch.send(p.Arrived("w-1", "sales", ref=2))
    expect(desk.locator("#call-id")).to_have_text("w-1")
    switch.send(p.Answered("w-1"))
    switch.send(p.Complete("w-1", agent="ann", wrap_up_s=30, ref=3))
    state_of(desk, "wrap_up")
    expect(desk.locator("#contact")).to_be_hidden()
    reload()
    state_of(desk, "wrap_up")
    expect(desk.locator("#contact")).to_be_hidden()
    expect(tab.locator("#state")).to_have_attribute("data-state", "wrap_up")

    # an unknown caller's new-lead form, restored, can still be saved
    desk.click("#ready")
    switch.send(p.Arrived("u-1", "sales", customer=UNKNOWN, ref=4))
    expect(desk.locator("#pop")).to_have_attribute("data-kind", "new_lead")
    reload()
    expect(desk.locator("#pop")).to_have_attribute("data-kind", "new_lead")
    desk.fill("#lead-name", "Grace Hopper")
    desk.click("#save-lead")
    expect(desk.locator("#save-lead")).to_have_text("Saved")
    desk.click("#logout")
    reload()
    state_of(desk, "logged_out")
    expect(desk.locator("#contact")).to_be_hidden()
    switch.close()
    tab.close()
    desk.close()
    assert server.stop() == 0
    # what the reloaded pages sent reached the store: the wrap-up typed before a
    # reload and completed after it, and the lead saved from a restored form
    with open_store(f"sqlite:///{server.data / 'crm.db'}") as store:
        (rec,) = [r for r in store.interactions("acme") if (r.ref or "").startswith("r-1@")]
        lead = store.find_customer("acme", UNKNOWN)
    assert (rec.agent, rec.disposition, rec.notes) == ("ann", "resolved", "asked for the invoice")
    assert lead is not None and lead.name == "Grace Hopper"
