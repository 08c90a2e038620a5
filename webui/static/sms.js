// The SMS page: loads each list from /api/sms/..., reloads the affected one when the core sends an sms.* event.
"use strict";
(function () {
  var L = JSON.parse(document.getElementById("i18n").textContent);

  function $(id) { return document.getElementById(id); }

  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function pair(p) { return p ? p[0] + " " + p[1] : ""; }
  function label(key, fields) {
    var s = pair(L.labels[key]);
    Object.keys(fields || {}).forEach(function (f) { s = s.split("{" + f + "}").join(String(fields[f])); });
    return s;
  }
  function named(table, key) { return table[key] ? pair(table[key]) : key; }

  function when(t) {
    if (!t) { return ""; }
    var d = new Date(t * 1000);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  function replace(parent, children) {
    while (parent.firstChild) { parent.removeChild(parent.firstChild); }
    children.forEach(function (c) { parent.appendChild(c); });
  }

  function row(cells, cls) {
    var tr = node("tr", cls);
    cells.forEach(function (c) {
      var td = node("td");
      if (c instanceof Node) { td.appendChild(c); } else { td.textContent = c === null || c === undefined ? "" : c; }
      tr.appendChild(td);
    });
    return tr;
  }

  function emptyRow(key, columns) {
    var td = node("td", "muted", label(key));
    td.colSpan = columns;
    var tr = node("tr");
    tr.appendChild(td);
    return tr;
  }

  function button(key, onClick) {
    var b = node("button", null, label(key));
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function showError(msg) {
    var e = $("sms-error");
    e.textContent = msg;
    e.hidden = !msg;
  }

  // every call: JSON in, JSON out; the core's message is shown as it is (it names what is wrong)
  function api(method, url, body) {
    var opts = {method: method, credentials: "same-origin", cache: "no-store"};
    if (body !== undefined) {
      opts.headers = {"Content-Type": "application/json"};
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      if (r.status === 401) { window.location.href = "login"; throw new Error(r.statusText); }
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.message || r.statusText); }
        return data;
      });
    }).catch(function (err) {
      showError(err instanceof TypeError ? pair(L.live[1]) : err.message);
      throw err;
    });
  }

  function quiet() {}  // the error is already on the page

  function loadTransports() {
    return api("GET", "api/sms/transports").then(function (d) {
      replace($("transport-list"), Object.keys(d.transports).map(function (via) {
        var t = d.transports[via];
        var li = node("li", "transport " + (t.up ? "up" : "down"));
        li.appendChild(node("span", "name", named(L.vias, via) + (via === d["default"] ? " (" + label("transport.default") + ")" : "")));
        li.appendChild(node("span", "state", label(t.up ? "transport.up" : "transport.down")));
        if (!t.up && t.reason) { li.appendChild(node("span", "reason", t.reason)); }
        return li;
      }));
    }, quiet);
  }

  function loadOutbox() {
    return api("GET", "api/sms/messages?limit=50").then(function (d) {
      var rows = d.messages.map(function (m) {
        var actions = node("span", "actions");
        if (m.state === "unknown") {
          actions.appendChild(button("resend", function () { resolve(m.id, true); }));
          actions.appendChild(button("give_up", function () { resolve(m.id, false); }));
        }
        var tr = row([when(m.created), m.to, m.text, named(L.vias, m.via), named(L.states, m.state), m.reason || "",
                      actions], "msg " + m.state);
        tr.dataset.id = m.id;
        return tr;
      });
      replace($("outbox-rows"), rows.length ? rows : [emptyRow("outbox.empty", 7)]);
    }, quiet);
  }

  function resolve(id, resend) {
    api("POST", "api/sms/messages/" + encodeURIComponent(id) + "/resolve", {resend: resend}).then(loadOutbox, quiet);
  }

  function loadInbound() {
    return api("GET", "api/sms/inbound?limit=50").then(function (d) {
      var rows = d.messages.map(function (m) {
        var text = node("span", null, m.text);
        if (m.opt_out) {
          var wrap = node("span");
          wrap.appendChild(node("mark", "optout", label("opted_out")));
          wrap.appendChild(document.createTextNode(" "));
          wrap.appendChild(text);
          text = wrap;
        }
        return row([when(m.received_at), m.sender, text], m.opt_out ? "opt-out" : null);
      });
      replace($("inbound-rows"), rows.length ? rows : [emptyRow("inbound.empty", 3)]);
    }, quiet);
  }

  function loadTemplates() {
    return api("GET", "api/sms/templates").then(function (d) {
      var rows = d.templates.map(function (t) {
        return row([t.name, t.text, t.parts, button("delete", function () {
          if (!window.confirm(label("confirm.delete", {name: t.name}))) { return; }
          api("DELETE", "api/sms/templates/" + encodeURIComponent(t.name)).then(loadTemplates, quiet);
        })]);
      });
      replace($("template-rows"), rows.length ? rows : [emptyRow("templates.empty", 4)]);
      var select = $("campaign-template"), chosen = select.value;
      replace(select, d.templates.map(function (t) { return node("option", null, t.name); }));
      if (chosen) { select.value = chosen; }
    }, quiet);
  }

  function recipientsText(r) {
    if (typeof r.numbers === "number") { return label("recipients.count", {n: r.numbers}); }
    if (r.numbers) { return label("recipients.count", {n: r.numbers.length}); }
    if (r.group === "all" || r.group === "vip") { return label("group." + r.group); }
    return label("group.company") + ": " + String(r.group).replace(/^company:/, "");
  }

  function scheduleText(s) {
    var name = L.labels["schedule." + s.kind] ? label("schedule." + s.kind) : s.kind;
    var detail = s.kind === "date" ? s.at : s.kind === "yearly" ? s.month + "-" + s.day + " " + s.time :
      s.kind === "holidays" ? s.dates.join(", ") + " " + s.time : s.kind === "cron" ? s.rule : "";
    return detail ? name + " " + detail : name;
  }

  function countsText(c) {
    var total = (c.counts && c.counts.total) || {};
    return Object.keys(L.counts).filter(function (k) { return k === "added" || total[k]; }).map(function (k) {
      return L.counts[k][0] + " " + (total[k] || 0);
    }).join(" · ");
  }

  function loadCampaigns() {
    return api("GET", "api/sms/campaigns").then(function (d) {
      var rows = d.campaigns.map(function (c) {
        var actions = node("span", "actions");
        if (c.state === "scheduled" || c.state === "running") {
          actions.appendChild(button("campaign.cancel", function () {
            if (!window.confirm(label("confirm.cancel", {name: c.name}))) { return; }
            api("POST", "api/sms/campaigns/" + encodeURIComponent(c.name) + "/cancel", {}).then(loadCampaigns, quiet);
          }));
        }
        return row([c.name, c.template, recipientsText(c.recipients), scheduleText(c.schedule),
                    named(L.campaign_states, c.state), countsText(c), actions], "campaign " + c.state);
      });
      replace($("campaign-rows"), rows.length ? rows : [emptyRow("campaigns.empty", 7)]);
    }, quiet);
  }

  function loadOptouts() {
    return api("GET", "api/sms/optouts").then(function (d) {
      var rows = d.optouts.map(function (o) {
        var source = L.labels["optout.source." + o.source] ? label("optout.source." + o.source) : o.source;
        return row([o.number, source, when(o.created_at), button("remove", function () {
          api("DELETE", "api/sms/optouts/" + encodeURIComponent(o.number)).then(loadOptouts, quiet);
        })]);
      });
      replace($("optout-rows"), rows.length ? rows : [emptyRow("optouts.empty", 4)]);
    }, quiet);
  }

  // a hint only: the carrier's split (GSM 7-bit 160/153, else UCS-2 70/67) before any footer the core adds
  function countHint() {
    var text = $("send-text").value, n = text.length;
    var gsm = /^[\x0a\x0d\x20-\x7e]*$/.test(text);
    var one = gsm ? 160 : 70, many = gsm ? 153 : 67;
    var parts = n === 0 ? 0 : n <= one ? 1 : Math.ceil(n / many);
    $("send-count").textContent = label("send.count", {chars: n, parts: parts});
  }

  function onSubmit(id, handler) {
    $(id).addEventListener("submit", function (ev) { ev.preventDefault(); showError(""); handler(); });
  }

  onSubmit("send-form", function () {
    api("POST", "api/sms/send", {to: $("send-to").value, text: $("send-text").value}).then(function () {
      $("send-text").value = "";
      $("send-done").textContent = label("send.queued");
      countHint();
      loadOutbox();
    }, quiet);
  });

  onSubmit("template-form", function () {
    api("POST", "api/sms/templates", {name: $("template-name").value, text: $("template-text").value})
      .then(function () { $("template-name").value = ""; $("template-text").value = ""; loadTemplates(); }, quiet);
  });

  function checked(name) { return document.querySelector("input[name=" + name + "]:checked").value; }

  function campaignForm() {
    $("campaign-company").hidden = !(checked("to") === "group" && $("campaign-group").value === "company");
    $("campaign-group").hidden = checked("to") !== "group";
    $("campaign-numbers").hidden = checked("to") !== "numbers";
    $("campaign-at").hidden = checked("when") !== "date";
  }

  onSubmit("campaign-form", function () {
    var recipients, group = $("campaign-group").value;
    if (checked("to") === "numbers") {
      recipients = {numbers: $("campaign-numbers").value.split(/[\s,;，；、]+/).filter(Boolean)};
    } else {
      recipients = {group: group === "company" ? "company:" + $("campaign-company").value.trim() : group};
    }
    // datetime-local gives "YYYY-MM-DDTHH:MM"; the core takes the box's local "YYYY-MM-DD HH:MM"
    var schedule = checked("when") === "date" ? {kind: "date", at: $("campaign-at").value.replace("T", " ")} : {kind: "now"};
    var values = {};
    [["product", "campaign-product"], ["agent", "campaign-agent"], ["date", "campaign-date"]].forEach(function (v) {
      if ($(v[1]).value) { values[v[0]] = $(v[1]).value; }
    });
    api("POST", "api/sms/campaigns", {name: $("campaign-name").value, template: $("campaign-template").value,
                                      recipients: recipients, schedule: schedule, values: values})
      .then(function () { $("campaign-name").value = ""; loadCampaigns(); }, quiet);
  });

  onSubmit("optout-form", function () {
    api("POST", "api/sms/optouts", {number: $("optout-number").value})
      .then(function () { $("optout-number").value = ""; loadOptouts(); }, quiet);
  });

  $("send-text").addEventListener("input", countHint);
  Array.prototype.forEach.call(document.querySelectorAll("#campaign-form input[type=radio], #campaign-group"),
    function (e) { e.addEventListener("change", campaignForm); });

  // a burst of events (a campaign's batch moving through the outbox) costs one reload of each list it touched
  var LOADERS = {outbox: loadOutbox, inbound: loadInbound, transports: loadTransports, templates: loadTemplates,
                 campaigns: loadCampaigns, optouts: loadOptouts};
  var EVENTS = {"sms.state": ["outbox"], "sms.inbound": ["inbound", "optouts"], "sms.transport": ["transports"],
                "sms.campaign": ["campaigns", "outbox"]};
  var pending = {}, timer = null;
  function schedule(lists) {
    lists.forEach(function (l) { pending[l] = true; });
    if (timer === null) {
      timer = setTimeout(function () {
        var due = Object.keys(pending);
        pending = {};
        timer = null;
        due.forEach(function (l) { LOADERS[l](); });
      }, 200);
    }
  }
  var ALL = Object.keys(LOADERS);

  function setLink(up) {
    var e = $("link");
    e.className = "link " + (up ? "up" : "down");
    e.textContent = pair(L.live[up ? 0 : 1]);
  }

  var es = new EventSource("events");
  es.onopen = function () { setLink(true); schedule(ALL); };  // whatever happened while we were away
  es.onerror = function () { setLink(false); };
  Object.keys(EVENTS).forEach(function (t) { es.addEventListener(t, function () { schedule(EVENTS[t]); }); });
  es.addEventListener("resync", function () { schedule(ALL); });
  es.addEventListener("unavailable", function (ev) {
    setLink(false);
    showError(JSON.parse(ev.data).message);
  });
  campaignForm();
  countHint();
  ALL.forEach(function (l) { LOADERS[l](); });
}());
