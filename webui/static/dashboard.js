// Live dashboard: loads /api/status, then reloads it whenever the core sends an event over SSE.
"use strict";
(function () {
  var L = JSON.parse(document.getElementById("i18n").textContent);
  var EVENTS = ["call.offered", "call.queued", "call.ringing", "call.answered", "call.ended",
                "agent.state", "queue.length", "span.alarm", "port.fault", "alarm", "resync"];
  var clockOffset = 0;  // box time minus browser time, seconds
  var last = null;

  function $(id) { return document.getElementById(id); }

  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function pair(p) { return p ? p[0] + " " + p[1] : ""; }
  function stateText(s) { return L.states[s] ? pair(L.states[s]) : s; }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return (h ? h + ":" + two(m % 60) : m) + ":" + two(s % 60);
  }

  function row(cells, cls) {
    var tr = node("tr", cls);
    cells.forEach(function (c) { tr.appendChild(node("td", null, c)); });
    return tr;
  }

  function replace(parent, children) {
    while (parent.firstChild) { parent.removeChild(parent.firstChild); }
    children.forEach(function (c) { parent.appendChild(c); });
  }

  function render(st) {
    last = st;
    clockOffset = st.time - Date.now() / 1000;
    $("box-name").textContent = st.box.name;
    $("box-number").textContent = st.box.number;
    replace($("trunk-grid"), st.trunks.map(function (t) {
      var c = node("div", "cell " + t.state, (t.kind === "line" ? "L" : "") + t.channel);
      c.title = t.name + " - " + stateText(t.state) + (t.caller ? " - " + t.caller : "");
      return c;
    }));
    renderSeats();
    renderAlarms(st.alarms || {spans: {}, ports: {}, box: {}});
    replace($("queue-rows"), st.queue.map(function (q) {
      return row([q.position, q.caller, duration(q.waiting_s)]);
    }));
    $("queue-length").textContent = st.queue.length;
    $("queue-empty").hidden = st.queue.length > 0;
    Object.keys(L.today).forEach(function (k) { $("today-" + k).textContent = st.today[k]; });
    $("core-error").hidden = true;
  }

  function renderAlarms(a) {
    var items = [];
    Object.keys(a.spans).forEach(function (span) {
      items.push(pair(L.labels["web.alarm.span"]).replace(/\{span\}/g, span) + ": " + a.spans[span].join(", "));
    });
    Object.keys(a.ports).forEach(function (port) {
      items.push(pair(L.labels["web.alarm.port"]) + ": " + port + " - " + a.ports[port]);
    });
    Object.keys(a.box || {}).forEach(function (name) {
      var label = L.labels["web.alarm." + name];
      items.push((label ? pair(label) : name) + (a.box[name] ? ": " + a.box[name] : ""));
    });
    replace($("alarms"), items.map(function (t) { return node("li", null, t); }));
    $("alarms").hidden = items.length === 0;
  }

  function renderSeats() {
    if (!last) { return; }
    var now = Date.now() / 1000 + clockOffset;
    replace($("seat-rows"), last.seats.map(function (s) {
      var reason = s.reason && L.reasons[s.reason] ? " (" + pair(L.reasons[s.reason]) + ")" : "";
      return row([s.seat + " " + s.name, s.extension, stateText(s.state) + reason, s.caller || "",
                  s.since ? duration(now - s.since) : ""], "seat " + s.state);
    }));
  }

  function showError(msg) {
    var e = $("core-error");
    e.textContent = msg;
    e.hidden = false;
  }

  function refresh() {
    fetch("api/status", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (r.status === 401) { window.location.href = "login"; return null; }
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.message || r.statusText); }
        return body;
      });
    }).then(function (st) { if (st) { render(st); } })
      .catch(function (err) {
        // a TypeError is the browser's own network failure, in its own words: say it in ours
        showError(err instanceof TypeError ? pair(L.labels["web.offline"]) : err.message);
      });
  }

  // a burst of events (a call moving through IVR, queue and seat) costs one reload
  var pending = null;
  function schedule() {
    if (pending === null) { pending = setTimeout(function () { pending = null; refresh(); }, 200); }
  }

  function setLink(up) {
    var e = $("link");
    e.className = "link " + (up ? "up" : "down");
    e.textContent = pair(L.labels[up ? "web.live" : "web.offline"]);
  }

  var es = new EventSource("events");
  es.onopen = function () { setLink(true); schedule(); };
  es.onerror = function () { setLink(false); };
  EVENTS.forEach(function (t) { es.addEventListener(t, schedule); });
  es.addEventListener("unavailable", function (ev) {
    setLink(false);
    showError(JSON.parse(ev.data).message);
  });
  refresh();
  setInterval(renderSeats, 1000);
}());
