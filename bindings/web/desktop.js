// The agent's desktop: the agent's own commands over the WebSocket (a desktop
// token acts only as its agent), the offered contact with the screen pop from
// the CRM store, the new-lead form, wrap-up and click-to-dial.
"use strict";

(() => {
  const { h, $ } = agner;
  const KEY = "agner.desktop.token";
  const STATE_NAMES = {
    logged_out: "logged out", not_ready: "not ready", ready: "ready",
    reserved: "ringing", busy: "on contact", wrap_up: "wrap-up",
  };
  let client = null;
  let contact = null; // the offer being handled, plus .phase: ringing | active | done

  function setState(state) {
    const el = $("state");
    el.textContent = STATE_NAMES[state] || state;
    el.className = "state " + state;
    el.dataset.state = state;
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
    $("wrapup").hidden = c === null || c.phase !== "active";
    if (c === null) return;
    $("channel").textContent = c.channel;
    $("channel").className = "badge " + c.channel;
    $("call-id").textContent = c.call_id;
    $("queue").textContent = c.queue;
    $("phase").textContent = c.phase === "ringing" ? "offered" : "in progress";
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

  function onOffer(msg) {
    contact = { ...msg, phase: "ringing" };
    setState("reserved");
    showPop(msg.screen_pop);
    showContact();
    $("notes").value = "";
    $("satisfaction").value = "";
    const who = msg.screen_pop && msg.screen_pop.customer
      ? msg.screen_pop.customer.name : msg.customer || "unknown caller";
    log(`offered ${msg.call_id} (${msg.channel}, ${msg.queue}) from ${who}`);
  }

  function endContact() {
    contact = null;
    showPop(null);
    showContact();
  }

  // ------------------------------------------------------------ wiring

  function wire() {
    $("login").onclick = async () => {
      await send({ type: "login" }, "logged in");
      setState("not_ready");
    };
    $("logout").onclick = async () => {
      await send({ type: "logout" }, "logged out");
      setState("logged_out");
      endContact();
    };
    $("ready").onclick = async () => {
      await send({ type: "ready" }, "ready");
      if (!contact) setState("ready");
    };
    $("not-ready").onclick = async () => {
      const reason = Number($("reason").value);
      await send({ type: "not_ready", reason },
        `not ready: ${$("reason").selectedOptions[0].textContent}`);
      if (!contact) setState("not_ready");
    };
    $("accept").onclick = async () => {
      await send({ type: "accept", call_id: contact.call_id }, `accepted ${contact.call_id}`);
      contact.phase = "active";
      setState("busy");
      showContact();
    };
    $("wrapup").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const sat = $("satisfaction").value;
      const notes = $("notes").value.trim();
      const c = contact;
      c.phase = "completing"; // an agent_ready may come before the reply
      try {
        await send({
          type: "complete", call_id: c.call_id, disposition: $("disposition").value,
          satisfaction: sat ? Number(sat) : null, notes: notes || null,
        }, `completed ${c.call_id}`);
      } catch (err) {
        c.phase = "active";
        throw err;
      }
      if (contact === c) {
        endContact();
        setState(c.after || "wrap_up");
      }
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
        $("agent").textContent = welcome.agent;
        $("desk").hidden = false;
      },
      onEvent: (msg) => {
        if (msg.type === "offer") onOffer(msg);
        else if (msg.type === "revoked") {
          if (contact && contact.call_id === msg.call_id) endContact();
          log(`${msg.call_id} withdrawn (${msg.reason})`);
          const after = { rona: "not_ready", logout: "logged_out" };
          setState(after[msg.reason] || "ready");
        } else if (msg.type === "agent_ready") {
          if (contact && contact.phase === "completing") contact.after = msg.state;
          else if (!contact) setState(msg.state);
        } else if (msg.type === "error") log(`${msg.code}: ${msg.message}`, true);
      },
    });
  }

  wire();
  start();
})();
