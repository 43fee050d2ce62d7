// The supervisor's wallboard: the tenant's queues and agents, pushed by the
// server as they change (a live subscription: no polling), and the intraday
// service level per interval from the CRM store's records.
"use strict";

(() => {
  const { h, $, seconds, percent } = agner;
  const KEY = "agner.wallboard.token";
  const STATES = ["ready", "reserved", "busy", "wrap_up", "not_ready", "logged_out"];
  const LABELS = {
    ready: "Ready", reserved: "Ringing", busy: "On contact", wrap_up: "Wrap-up",
    not_ready: "Not ready", logged_out: "Logged out",
  };
  const INTERVAL_S = 900;
  let last = null; // the latest stats message, and when it came (performance.now())
  let lastAt = 0;
  let handled = -1; // answered + abandoned when the chart was last asked for
  let chartTimer = null;
  let chartAsked = 0;
  let client = null;

  function slClass(q) {
    const sl = q.service_level_offered;
    if (sl === null || q.target === null) return "sl-none";
    if (sl >= q.target) return "sl-ok";
    return sl >= q.target - 0.1 ? "sl-warn" : "sl-bad";
  }

  function renderQueues() {
    const body = $("queues").tBodies[0];
    const since = performance.now() - lastAt; // longest waits grow between pushes
    body.replaceChildren(
      ...last.queues.map((q) =>
        h("tr", { "data-queue": q.name },
          h("th", {}, q.name),
          h("td", { class: "waiting" + (q.waiting ? " hot" : "") }, q.waiting),
          h("td", { class: "longest" }, q.waiting ? seconds(q.longest_wait_ms + since) : "–"),
          h("td", { class: "sl " + slClass(q) }, percent(q.service_level_offered)),
          h("td", { class: "target" }, `${percent(q.target)} in ${q.threshold_s}s`),
          h("td", { class: "asa" }, seconds(q.asa_ms)),
          h("td", { class: "abandoned" },
            q.offered ? `${q.abandoned} (${percent(q.abandoned / q.offered)})` : q.abandoned),
          h("td", { class: "offered" }, q.offered),
          h("td", { class: "answered" }, q.answered),
        ),
      ),
    );
  }

  function renderAgents() {
    const counts = last.agents || {};
    $("agents").replaceChildren(
      ...STATES.map((s) =>
        h("div", { class: "agent-state " + s, "data-state": s },
          h("span", { class: "count" }, counts[s] ?? 0),
          h("span", { class: "label" }, LABELS[s]),
        ),
      ),
    );
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    node.append(...children);
    return node;
  }

  function renderIntraday(report) {
    const width = 960, height = 120, pad = 24;
    const day = 86400e6, slots = day / (report.interval_s * 1e6);
    const start = report.since_us;
    const charts = report.queues.map((q) => {
      const bw = (width - pad) / slots;
      const y = (v) => height - pad - v * (height - 2 * pad);
      const bars = q.intervals.map((iv) => {
        const x = pad + Math.floor((iv.start_us - start) / (report.interval_s * 1e6)) * bw;
        const sl = iv.service_level ?? 0;
        const cls = sl >= q.target ? "sl-ok" : sl >= q.target - 0.1 ? "sl-warn" : "sl-bad";
        const t = new Date(iv.start_us / 1000).toISOString().slice(11, 16);
        return svg("rect", {
          class: "bar " + cls, x: x + 1, y: y(sl), width: Math.max(bw - 2, 2),
          height: Math.max(height - pad - y(sl), 1), "data-start": iv.start_us,
        }, svg("title", {}, `${t} UTC: ${percent(iv.service_level)} of ${iv.offered} offered`));
      });
      const hours = [];
      for (let hr = 0; hr <= 24; hr += 3) {
        const x = pad + (hr * 3600 / report.interval_s) * bw;
        hours.push(svg("text", { x, y: height - 6, class: "axis" }, `${hr}h`));
      }
      return h("figure", { class: "chart", "data-queue": q.name },
        h("figcaption", {}, `${q.name} — target ${percent(q.target)} in ${q.threshold_s}s`),
        svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" },
          svg("line", { class: "target-line", x1: pad, x2: width, y1: y(q.target), y2: y(q.target) }),
          svg("text", { x: 0, y: y(q.target) + 4, class: "axis" }, percent(q.target)),
          ...bars, ...hours),
      );
    });
    $("intraday").replaceChildren(...charts);
  }

  async function askIntraday() {
    chartTimer = null;
    chartAsked = performance.now();
    try {
      renderIntraday(await client.request({ type: "intraday", interval_s: INTERVAL_S }));
    } catch (err) {
      $("intraday").replaceChildren(h("p", { class: "error" }, `chart: ${err.message}`));
    }
  }

  function onStats(msg) {
    last = msg;
    lastAt = performance.now();
    renderQueues();
    renderAgents();
    // The chart follows the records: ask again when contacts ended, at most every 5 s.
    const done = msg.queues.reduce((n, q) => n + q.answered + q.abandoned, 0);
    if (done !== handled && chartTimer === null) {
      handled = done;
      // records reach the store within 200 ms of a contact's end: ask a little later
      const wait = chartAsked ? Math.max(500, 5000 - (performance.now() - chartAsked)) : 0;
      chartTimer = setTimeout(askIntraday, wait);
    }
  }

  function start() {
    agner.run(KEY, {
      onOpen: async (c, welcome) => {
        client = c;
        $("tenant").textContent = welcome.tenant;
        $("board").hidden = false;
        handled = -1;
        await client.request({ type: "subscribe", live: true, agents: true, interval_ms: 250 });
      },
      onEvent: (msg) => {
        if (msg.type === "stats") onStats(msg);
      },
    });
  }

  setInterval(() => {
    $("clock").textContent = new Date().toISOString().slice(11, 19) + " UTC";
    if (last) renderQueues();
  }, 1000);

  start();
})();
