// agner's browser pages: the WebSocket client and small DOM helpers shared by
// the desktop (desktop.js) and the wallboard (wallboard.js). Plain JavaScript,
// no build step: the server sends these files as they are.
"use strict";

const agner = (() => {
  /** h("div", {class: "x", onclick: f}, "text", child): an element. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function $(id) {
    return document.getElementById(id);
  }

  /** The page's token: from "#token=..." (then dropped from the address bar), else
   * from this tab's sessionStorage. Tokens never travel in a URL to the server. */
  function readToken(key) {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      const token = decodeURIComponent(m[1]);
      sessionStorage.setItem(key, token);
      history.replaceState(null, "", location.pathname + location.search);
      return token;
    }
    return sessionStorage.getItem(key);
  }

  function seconds(ms) {
    if (ms === null || ms === undefined) return "–";
    const s = Math.round(ms / 1000);
    return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  }

  function percent(x) {
    return x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`;
  }

  /**
   * One authenticated WebSocket to `agner serve`, reconnecting when it drops.
   * request(msg) numbers the message (ref) and resolves with the reply of that
   * ref (rejects with an Error carrying .code); every other server message goes
   * to onEvent. onOpen(welcome) runs after each successful hello.
   */
  class Client {
    constructor({ token, onOpen, onEvent, onStatus }) {
      this.token = token;
      this.onOpen = onOpen;
      this.onEvent = onEvent;
      this.onStatus = onStatus || (() => {});
      this.ref = 0;
      this.waiting = new Map();
      this.stopped = false;
      this.delay = 500;
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const ws = new WebSocket(scheme + location.host + "/v1/ws");
      this.ws = ws;
      this.onStatus("connecting");
      ws.onopen = async () => {
        try {
          const welcome = await this.request({ type: "hello", token: this.token });
          this.delay = 500;
          this.onStatus("live");
          await this.onOpen(welcome);
        } catch (err) {
          this.stopped = err.code === "unauthorized" || err.code === "forbidden";
          this.onStatus(err.code || "error", err); // unauthorized, forbidden, ...
          ws.close();
        }
      };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        const pending = msg.ref ? this.waiting.get(msg.ref) : undefined;
        if (pending) {
          this.waiting.delete(msg.ref);
          if (msg.type === "error") {
            const err = new Error(msg.message);
            err.code = msg.code;
            pending.reject(err);
          } else pending.resolve(msg);
        } else this.onEvent(msg);
      };
      ws.onclose = () => {
        for (const p of this.waiting.values()) {
          const err = new Error("disconnected");
          err.code = "disconnected";
          p.reject(err);
        }
        this.waiting.clear();
        if (this.stopped) return;
        this.onStatus("reconnecting");
        setTimeout(() => this.connect(), this.delay);
        this.delay = Math.min(this.delay * 2, 10000);
      };
    }

    request(msg) {
      return new Promise((resolve, reject) => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          const err = new Error("not connected");
          err.code = "disconnected";
          reject(err);
          return;
        }
        msg.ref = ++this.ref;
        this.waiting.set(msg.ref, { resolve, reject });
        this.ws.send(JSON.stringify(msg));
      });
    }

    close() {
      this.stopped = true;
      if (this.ws) this.ws.close();
    }
  }

  /**
   * The page's session: its token (the address's fragment, this tab's storage or
   * the sign-in form), a Client with it, the connection's state in #status; a
   * refused token brings the sign-in form back. onOpen(client, welcome) runs
   * after each hello; onEvent(msg) gets the server's events.
   */
  function run(key, { onOpen, onEvent }) {
    const form = $("signin");
    let client = null;
    function start(token) {
      client = new Client({
        token,
        onOpen: (welcome) => onOpen(client, welcome),
        onEvent,
        onStatus: (s, err) => {
          $("status").textContent = err ? `${s}: ${err.message}` : s;
          $("status").className = "status " + s;
          if (s === "unauthorized" || s === "forbidden") {
            sessionStorage.removeItem(key);
            form.hidden = false;
          }
        },
      });
      client.connect();
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(key, token);
      form.hidden = true;
      start(token);
    });
    const token = readToken(key);
    if (token) start(token);
    else form.hidden = false;
  }

  return { h, $, readToken, seconds, percent, Client, run };
})();
