// The agent's desktop: the agent's own commands over the WebSocket (a desktop
// token acts only as its agent), the offered contact with the screen pop from
// the CRM store, the new-lead form, wrap-up and click-to-dial. What it shows of
// the agent comes from the server (agent_status after each sign-in and at each
// change; offer, connected, ended, revoked), so a reload or a second tab shows
// the same.
"use strict";

(() => {
  const { h, $ } = agner;
  const KEY = "agner.desktop.token";
  const STATE_NAMES = {
    logged_out: "logged out", not_ready: "not ready", ready: "ready",
    reserved: "ringing", busy: "on contact", wrap_up: "wrap-up",
  };
  const PHASES = { ringing: "offered", active: "talking", ended: "caller hung up" };
  const NOTES = "agner.desktop.notes."; // + call id: the wrap-up's notes survive a reload
  let client = null;
  // The contact shown: an offer's fields, plus .phase (ringing | active | ended |
  // completing), .answered_us and .ended_us (server time).
  let contact = null;
  let since = null; // when the agent entered its state (server time, ms)
  let offset = 0; // server clock - this browser's clock, in ms

  function serverNow() {
    return Date.now() + offset;
  }

  function setState(state, reason, sinceUs) {
    const el = $("state");
    let text = STATE_NAMES[state] || state;
    if (state === "not_ready" && reason) {
      const option = $("reason").querySelector(`option[value="${reason}"]`);
      text += ": " + (reason === -1 ? "no answer" : option ? option.textContent : reason);
      if (option) $("reason").value = String(reason);
    }
    el.textContent = text;
    el.className = "state " + state;
    el.dataset.state = state;
    el.dataset.reason = String(reason || 0);
    since = sinceUs === null || sinceUs === undefined ? null : sinceUs / 1000;
    tick();
  }

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const m = Math.floor(s / 60);
    return `${m}:${String(s % 60).padStart(2, "0")}`;
  }

  // Once a second: the time in the state, and the contact's talk time.
  function tick() {
    $("since").textContent = since === null ? "" : clock(serverNow() - since);
    const c = contact;
    let text = "";
    if (c && c.answered_us) {
      const end = c.ended_us ? c.ended_us / 1000 : serverNow();
      text = clock(end - c.answered_us / 1000);
    }
    $("timer").textContent = text;
  }

  function log(text, error) {
    const item = h("li", { class: error ? "error" : "" },
      `${new Date().toLocaleTimeString()} ${text}`);
    $("log").prepend(item);
    while ($("log").children.length > 20) $("log").lastChild.remove();
  }

  async function send(msg, what) {
    try {
      const reply = await client.request(msg);
      if (what) log(what);
      return reply;
    } catch (err) {
      log(`${msg.type}: ${err.message}`, true);
      throw err;
    }
  }

  // ------------------------------------------------------------ the contact

  function showContact() {
    const c = contact;
    $("idle").hidden = c !== null;
    $("contact").hidden = c === null;
    $("pop").hidden = c === null || !c.screen_pop;
    $("wrapup").hidden = c === null || c.phase === "ringing";
    $("hung-up").hidden = c === null || !c.ended_us;
    tick();
    if (c === null) return;
    $("contact").dataset.phase = c.phase;
    $("channel").textContent = c.channel;
    $("channel").className = "badge " + c.channel;
    $("call-id").textContent = c.call_id;
    $("queue").textContent = c.queue;
    const phase = c.phase === "completing" ? (c.ended_us ? "ended" : "active") : c.phase;
    $("phase").textContent = phase === "active" && c.channel !== "voice" && c.channel !== "callback"
      ? "in progress" : PHASES[phase];
    $("phase").className = "phase " + phase;
    $("accept").hidden = c.phase !== "ringing";
    $("dial").hidden = !c.dial;
    if (c.dial) {
      $("dial-number").textContent = c.dial;
      $("dial-number").href = "tel:" + c.dial;
    }
    $("ivr").replaceChildren(
      ...Object.entries(c.data || {}).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    );
  }

  function dialButton(number) {
    return h("button", {
      type: "button", class: "click-to-dial", "data-number": number,
      onclick: async () => {
        const reply = await send({ type: "dial", queue: contact.queue, number });
        log(`dialing ${number} (${reply.call_id}): it comes to you when you are free`);
      },
    }, "Call");
  }

  function customerCard(pop) {
    const cu = pop.customer;
    const hints = pop.hints || {};
    const history = pop.interactions || [];
    return [
      h("h2", { id: "customer-name" }, cu.name),
      h("p", { class: "tags" },
        h("span", { class: "tier " + cu.tier }, cu.tier),
        cu.language ? h("span", {}, `language ${cu.language}`) : null,
        hints.preferred_agents && hints.preferred_agents.length
          ? h("span", {}, `served well by ${hints.preferred_agents.join(", ")}`) : null),
      h("ul", { class: "phones" },
        ...cu.phones.map((p) => h("li", {}, h("span", { class: "phone" }, p), " ", dialButton(p)))),
      cu.emails.length ? h("p", {}, cu.emails.join(", ")) : null,
      Object.keys(cu.attributes).length
        ? h("dl", { class: "attributes" },
          ...Object.entries(cu.attributes).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))
        : null,
      historyTable(history),
    ];
  }

  function historyTable(history) {
    if (!history.length) return h("p", { class: "muted" }, "No earlier contacts.");
    return h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ...["When", "Channel", "Queue", "Agent", "Outcome",
        "Disposition", "Satisfaction", "Notes"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ...history.map((i) => h("tr", {},
        h("td", {}, new Date(i.arrived_us / 1000).toLocaleString()),
        h("td", {}, i.channel), h("td", {}, i.queue || ""), h("td", {}, i.agent || ""),
        h("td", {}, i.outcome), h("td", {}, i.disposition || ""),
        h("td", {}, i.satisfaction ?? ""), h("td", {}, i.notes || "")))));
  }

  function leadForm(pop) {
    const form = pop.form;
    if (!form || form.lead_id === null) {
      return [h("h2", {}, "Unknown caller"), h("p", { class: "muted" },
        "The number is withheld or not valid: nothing to save.")];
    }
    const field = (id, label, value, attrs) => h("label", {}, label,
      h("input", { id, value: value || "", ...attrs }));
    const tiers = form.tiers.length ? form.tiers : ["standard"];
    const node = h("form", { id: "lead-form", class: "lead-form" },
      h("h2", {}, "New lead"),
      h("p", { class: "muted" }, `Unknown caller ${form.phone || form.email || ""}`),
      field("lead-name", "Name", pop.lead && pop.lead.name, { required: true }),
      field("lead-phone", "Phone", form.phone, { readonly: !!form.phone }),
      field("lead-email", "E-mail", form.email, { type: "email" }),
      h("label", {}, "Tier", h("select", { id: "lead-tier" },
        ...tiers.map((t) => h("option", {}, t)))),
      field("lead-language", "Language", "", { placeholder: "en, fr, pt-BR" }),
      h("label", { class: "wide" }, "Notes",
        h("textarea", { id: "lead-notes", rows: 2 }, (pop.lead && pop.lead.notes) || "")),
      h("button", { type: "submit", id: "save-lead" }, "Save as customer"),
      historyTable(pop.interactions || []));
    node.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = (id) => $(id).value.trim() || null;
      await send({
        type: "save_lead", lead_id: form.lead_id, name: value("lead-name"),
        notes: value("lead-notes"), phone: form.phone ? null : value("lead-phone"),
        email: form.email ? null : value("lead-email"), tier: value("lead-tier"),
        language: value("lead-language"), convert: true,
      }, `saved ${value("lead-name")} as a customer`);
      $("save-lead").disabled = true;
      $("save-lead").textContent = "Saved";
    });
    return [node];
  }

  function showPop(pop) {
    const node = $("pop");
    if (!pop) {
      node.replaceChildren();
      return;
    }
    node.dataset.kind = pop.kind;
    const parts = pop.kind === "customer" ? customerCard(pop) : leadForm(pop);
    node.replaceChildren(...parts.filter((part) => part !== null));
  }

  // A contact to show from an offer or an agent_status's contact; `phase` as
  // the server says it (ringing | answered | ended).
  function takeContact(msg, phase) {
    contact = {
      ...msg, phase: { answered: "active" }[phase] || phase,
      answered_us: msg.answered_us || null, ended_us: msg.ended_us || null,
    };
    showPop(msg.screen_pop);
    $("notes").value = sessionStorage.getItem(NOTES + msg.call_id) || "";
    $("satisfaction").value = "";
    showContact();
  }

  function onOffer(msg) {
    if (contact && contact.call_id !== msg.call_id) {
      // A wrap-up of 0 s: the next contact came before the last one's disposition
      // (the server then stores that record without it).
      if (contact.phase === "ended") log(`${contact.call_id} closed without a disposition`, true);
      sessionStorage.removeItem(NOTES + contact.call_id);
    }
    takeContact(msg, "ringing");
    const who = msg.screen_pop && msg.screen_pop.customer
      ? msg.screen_pop.customer.name : msg.customer || "unknown caller";
    log(`offered ${msg.call_id} (${msg.channel}, ${msg.queue}) from ${who}`);
  }

  // Where the agent stands: sent after each sign-in (with the contact's screen
  // pop) and whenever it changes (the contact without it: the offer's is kept).
  function onStatus(msg) {
    setState(msg.state, msg.reason, msg.since_us);
    const c = msg.contact;
    if (!c) {
      if (contact) endContact();
      return;
    }
    if (!contact || contact.call_id !== c.call_id) {
      takeContact(c, c.phase);
      return;
    }
    if (c.screen_pop) showPop(c.screen_pop);
    contact.screen_pop = c.screen_pop || contact.screen_pop;
    contact.answered_us = c.answered_us;
    contact.ended_us = c.ended_us;
    if (contact.phase !== "completing") contact.phase = { answered: "active" }[c.phase] || c.phase;
    showContact();
  }

  function onConnected(msg) {
    if (contact && contact.call_id === msg.call_id && contact.phase === "ringing") {
      contact.phase = "active";
      contact.answered_us = msg.answered_us;
      showContact();
    }
    log(`${msg.call_id} connected`);
  }

  function onEnded(msg) {
    const ours = contact && contact.call_id === msg.call_id;
    if (msg.reason === "transferred") {
      if (ours) endContact();
      log(`${msg.call_id} transferred to ${msg.queue}`);
      return;
    }
    if (ours) {
      contact.ended_us = msg.ended_us;
      if (contact.phase !== "completing") contact.phase = "ended";
      showContact();
    }
    log(`${msg.call_id}: the caller hung up`);
  }

  function endContact() {
    if (contact) sessionStorage.removeItem(NOTES + contact.call_id);
    contact = null;
    showPop(null);
    showContact();
  }

  // ------------------------------------------------------------ wiring

  // The agent's state on the page follows the server's agent_status, which
  // comes before each command's reply: the buttons only send.
  function wire() {
    $("login").onclick = () => send({ type: "login" }, "logged in");
    $("logout").onclick = () => send({ type: "logout" }, "logged out");
    $("ready").onclick = () => send({ type: "ready" }, "ready");
    $("not-ready").onclick = () => send({ type: "not_ready", reason: Number($("reason").value) },
      `not ready: ${$("reason").selectedOptions[0].textContent}`);
    $("accept").onclick = () =>
      send({ type: "accept", call_id: contact.call_id }, `accepted ${contact.call_id}`);
    $("notes").addEventListener("input", () => {
      if (contact) sessionStorage.setItem(NOTES + contact.call_id, $("notes").value);
    });
    $("wrapup").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const sat = $("satisfaction").value;
      const notes = $("notes").value.trim();
      const c = contact;
      const was = c.phase;
      c.phase = "completing"; // the agent_status of the complete comes before the reply
      try {
        await send({
          type: "complete", call_id: c.call_id, disposition: $("disposition").value,
          satisfaction: sat ? Number(sat) : null, notes: notes || null,
        }, `completed ${c.call_id}`);
      } catch (err) {
        if (contact === c) c.phase = was;
        throw err;
      }
      if (contact === c) endContact(); // after a hang-up: only the record was owed
    });
  }

  function start() {
    agner.run(KEY, {
      onOpen: (c, welcome) => {
        client = c;
        if (welcome.agent === null) {
          const err = new Error("a tenant's token: the desktop needs an agent's");
          err.code = "forbidden";
          throw err;
        }
        offset = welcome.server_time_us / 1000 - Date.now();
        $("agent").textContent = welcome.agent;
        $("desk").hidden = false;
        // the agent_status that follows the welcome restores the view
      },
      onEvent: (msg) => {
        if (msg.type === "agent_status") onStatus(msg);
        else if (msg.type === "offer") onOffer(msg);
        else if (msg.type === "connected") onConnected(msg);
        else if (msg.type === "ended") onEnded(msg);
        else if (msg.type === "revoked") {
          if (contact && contact.call_id === msg.call_id) endContact();
          log(`${msg.call_id} withdrawn (${msg.reason})`);
        } else if (msg.type === "agent_ready") log(`wrap-up over: ${STATE_NAMES[msg.state]}`);
        else if (msg.type === "error") log(`${msg.code}: ${msg.message}`, true);
      },
    });
    setInterval(tick, 1000);
  }

  wire();
  start();
})();
