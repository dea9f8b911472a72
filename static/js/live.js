/* Switchyard live pages: plain JS, no dependencies, no inline scripts.
 *
 * <main data-live="board|deployment" data-ws="/ws/..."> opts a page in. The server sends a
 * snapshot on every (re)connect, so after a drop the page re-syncs by itself. Messages are
 * {"type", "data"} as documented in releases/events.py.
 */
(function () {
  "use strict";

  var main = document.querySelector("main[data-live]");

  // --- small DOM helpers ----------------------------------------------------------------------

  function el(tag, attrs) {
    var node = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key) || attrs[key] == null) continue;
      if (key === "class") node.className = attrs[key];
      else if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function words(value) {
    return String(value == null ? "" : value).replace(/_/g, " ");
  }

  function badge(state, extra) {
    return el("span", { class: "badge state-" + state + (extra ? " " + extra : "") }, words(state));
  }

  // --- times ----------------------------------------------------------------------------------

  var UNITS = [
    ["year", 31536000], ["month", 2592000], ["week", 604800],
    ["day", 86400], ["hour", 3600], ["minute", 60]
  ];

  // Like Django's timesince: "5 minutes", "2 hours, 3 minutes".
  function since(iso) {
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    for (var i = 0; i < UNITS.length; i++) {
      var count = Math.floor(seconds / UNITS[i][1]);
      if (count > 0) {
        var text = count + "\u00a0" + UNITS[i][0] + (count === 1 ? "" : "s");
        if (i + 1 < UNITS.length) {
          var rest = Math.floor((seconds - count * UNITS[i][1]) / UNITS[i + 1][1]);
          if (rest > 0) text += ", " + rest + "\u00a0" + UNITS[i + 1][0] + (rest === 1 ? "" : "s");
        }
        return text;
      }
    }
    return "0\u00a0minutes";
  }

  function agoTime(iso) {
    return el("time", { datetime: iso, "data-ago": "" }, since(iso) + " ago");
  }

  function clockText(iso) {
    return new Date(iso).toLocaleTimeString([], {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false
    });
  }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-ago]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso) {
        t.textContent = since(iso) + " ago";
        t.title = new Date(iso).toLocaleString();
      }
    });
    (root || document).querySelectorAll("time[data-clock]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso && !t.dataset.localised) {
        t.textContent = clockText(iso);
        t.title = new Date(iso).toLocaleString();
        t.dataset.localised = "1";
      }
    });
  }

  // --- the connection -------------------------------------------------------------------------

  var statusEl = document.querySelector("[data-live-status]");

  function setStatus(text, kind) {
    if (!statusEl) return;
    statusEl.hidden = false;
    statusEl.textContent = text;
    statusEl.className = "live-status live-" + kind;
  }

  // Open a WebSocket to path() and keep it open: exponential backoff with jitter after a drop,
  // at once when the browser comes back online. 4401/4404 from the server are final.
  function live(path, onMessage) {
    var attempt = 0;
    var socket = null;
    var timer = null;
    var openedAt = 0;
    var stopped = false;

    function open() {
      timer = null;
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      setStatus(attempt ? "reconnecting…" : "connecting…", "warn");
      socket = new WebSocket(scheme + location.host + path());
      socket.onopen = function () {
        openedAt = Date.now();
        setStatus("live", "ok");
      };
      socket.onmessage = function (event) {
        var message;
        try {
          message = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        if (message && message.type) onMessage(message);
      };
      socket.onclose = function (event) {
        socket = null;
        if (event.code === 4401) {
          stopped = true;
          setStatus("signed out: reload to sign in", "error");
          return;
        }
        if (event.code === 4404) {
          stopped = true;
          setStatus("not found", "error");
          return;
        }
        if (openedAt && Date.now() - openedAt > 10000) attempt = 0; // it had been healthy
        openedAt = 0;
        attempt += 1;
        var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(attempt - 1, 5)));
        delay = Math.round(delay * (0.75 + Math.random() * 0.5));
        setStatus("offline: retrying in " + Math.ceil(delay / 1000) + " s", "warn");
        timer = setTimeout(open, delay);
      };
    }

    window.addEventListener("online", function () {
      if (!stopped && socket === null && timer !== null) {
        clearTimeout(timer);
        open();
      }
    });
    open();
  }

  // --- the board ------------------------------------------------------------------------------

  function releaseUrl(service, version) {
    var table = document.querySelector("table.board");
    var pattern = table ? table.dataset.releaseUrl : "/services/__service__/releases/__version__/";
    return pattern
      .replace("__service__", encodeURIComponent(service))
      .replace("__version__", encodeURIComponent(version));
  }

  function activeBox(d) {
    var weights = d.weights || {};
    return el(
      "a",
      { class: "cell-active state-" + d.state, href: d.links && d.links.page },
      badge(d.state),
      el("span", { class: "cell-line" },
        el("span", { class: "kind" }, (d.strategy && d.strategy.kind) || ""), " → " + d.target_version),
      d.step && d.step.description ? el("span", { class: "cell-line step" }, d.step.description) : null,
      Object.keys(weights).length
        ? el("span", { class: "cell-line weights" }, "canary " + (weights.canary || 0) + "%")
        : null
    );
  }

  function applyCell(cell) {
    var key = cell.service + "/" + cell.environment;
    var td = null;
    document.querySelectorAll("[data-cell]").forEach(function (node) {
      if (node.dataset.cell === key) td = node;
    });
    if (!td) return; // a service or environment created after the page loaded
    if (td.classList.contains("cell-empty")) {
      td.classList.remove("cell-empty");
      td.replaceChildren(
        el("div", { class: "cell-stable" }, el("span", { "data-cell-version": "" })),
        el("div", { class: "cell-shipped muted", "data-cell-shipped": "" }),
        el("div", { "data-cell-active": "" })
      );
    }
    var d = cell.deployment;
    var signature = JSON.stringify([
      cell.version, d && d.id, d && d.state, d && d.step, d && d.weights
    ]);
    var changed = td.dataset.sig !== undefined && td.dataset.sig !== signature;
    td.dataset.sig = signature;

    var version = td.querySelector("[data-cell-version]");
    var fresh = cell.version
      ? el("a", { class: "version", href: releaseUrl(cell.service, cell.version), "data-cell-version": "" },
        cell.version)
      : el("span", { class: "version none", "data-cell-version": "" }, "not deployed");
    version.replaceWith(fresh);

    var box = td.querySelector("[data-cell-active]");
    if (d && d.active) box.replaceChildren(activeBox(d));
    else box.replaceChildren();

    if (d && d.state === "succeeded" && d.finished_at) {
      td.querySelector("[data-cell-shipped]").replaceChildren(
        agoTime(d.finished_at), " by " + (d.created_by || "switchyard"));
    }
    if (changed) flash(td);
  }

  function flash(node) {
    node.classList.remove("changed");
    void node.offsetWidth; // restart the animation
    node.classList.add("changed");
  }

  function applyRecent(d) {
    var table = document.querySelector("[data-recent]");
    if (!table || !d) return;
    var tbody = table.tBodies[0];
    var row = tbody.querySelector('[data-deployment-row="' + Number(d.id) + '"]');
    if (row) {
      var old = row.querySelector("[data-row-state]");
      if (old && !old.classList.contains("state-" + d.state)) {
        var fresh = badge(d.state);
        fresh.setAttribute("data-row-state", "");
        old.replaceWith(fresh);
        flash(row);
      }
      return;
    }
    var state = badge(d.state);
    state.setAttribute("data-row-state", "");
    row = el("tr", { "data-deployment-row": d.id },
      el("td", null, el("a", { href: d.links.page }, "#" + d.id)),
      el("td", null, d.service),
      el("td", null, d.environment),
      el("td", null,
        el("a", { href: releaseUrl(d.service, d.target_version) }, d.target_version),
        d.stable_version ? el("span", { class: "muted" }, " from " + d.stable_version) : null),
      el("td", null, state),
      el("td", null, (d.strategy && d.strategy.kind) || ""),
      el("td", null, d.created_at ? agoTime(d.created_at) : ""),
      el("td", null, d.created_by || "switchyard"));
    var empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    tbody.prepend(row);
    flash(row);
    var limit = Number(table.dataset.recentLimit) || 12;
    while (tbody.rows.length > limit) tbody.deleteRow(-1);
  }

  function initBoard() {
    live(function () { return main.dataset.ws; }, function (message) {
      if (message.type === "board.cell") {
        applyCell(message.data);
        applyRecent(message.data.deployment);
      }
    });
  }

  // --- one deployment -------------------------------------------------------------------------

  function initDeployment() {
    var version = Number(main.dataset.version) || 0;
    var lastEvent = Number(main.dataset.lastEvent) || 0;
    var actions = document.querySelector("[data-actions]");
    var allowed = JSON.parse(actions.dataset.allowed);
    var labels = JSON.parse(actions.dataset.labels);
    var state = main.dataset.state;
    var busy = false;

    function oneOf(states) {
      var names = states.map(words);
      return names.length === 1
        ? names[0]
        : names.slice(0, -1).join(", ") + " or " + names[names.length - 1];
    }

    // Enable what ALLOWED (releases.commands, sent in data-allowed) permits in this state.
    function applyButtons() {
      actions.querySelectorAll("form[data-action]").forEach(function (form) {
        var name = form.dataset.action;
        var button = form.querySelector("button");
        var ok = (allowed[name] || []).indexOf(state) !== -1;
        button.disabled = busy || !ok;
        if (ok) {
          button.removeAttribute("title");
          form.removeAttribute("title");
        } else {
          var why = labels[name] + " needs the deployment to be " + oneOf(allowed[name]) +
            "; it is " + words(state) + ".";
          button.title = why;
          form.title = why;
        }
      });
    }

    function setText(selector, text) {
      var node = document.querySelector(selector);
      if (node) node.textContent = text;
      return node;
    }

    function applyDeployment(d) {
      if (d.version < version) return; // an older message overtaken by a newer one
      version = d.version;
      state = d.state;
      var badgeEl = document.querySelector("[data-d-state]");
      badgeEl.className = "badge big state-" + d.state;
      badgeEl.textContent = words(d.state);
      setText("[data-d-kind]", (d.strategy && d.strategy.kind) || "—");
      var stepEl = document.querySelector("[data-d-step]");
      var total = Number(stepEl.dataset.stepsTotal) || 0;
      if (d.step && d.step.description) {
        stepEl.replaceChildren(
          el("span", { class: "step-no" }, (d.step.index + 1) + (total ? "/" + total : "")),
          " " + d.step.description);
      } else {
        stepEl.textContent = "—";
      }
      setText("[data-d-intent]", d.intent || "—");
      var finished = document.querySelector("[data-d-finished]");
      finished.replaceChildren(d.finished_at ? agoTime(d.finished_at) : "—");
      var messageEl = setText("[data-d-message]", d.message || "");
      messageEl.hidden = !d.message || d.message === d.failure_reason;
      var failure = document.querySelector("[data-d-failure]");
      failure.querySelector("span").textContent = d.failure_reason || "";
      failure.hidden = !d.failure_reason;

      var weights = d.weights || {};
      setText("[data-w-stable]", (weights.stable || 0) + "%");
      setText("[data-w-canary]", (weights.canary || 0) + "%");
      var split = document.querySelector("[data-split]");
      split.value = weights.canary || 0;
      split.textContent = "canary " + (weights.canary || 0) + "%";

      var steps = document.querySelectorAll("[data-steps] li");
      steps.forEach(function (li, i) {
        var done = d.state === "succeeded" || i < d.step.index;
        li.className = done ? "done" : (i === d.step.index && d.step.description ? "current" : "");
      });
      applyButtons();
    }

    function applyEvent(e) {
      var list = document.querySelector("[data-events]");
      if (list.querySelector('[data-event-id="' + Number(e.id) + '"]')) return;
      var empty = list.querySelector("li.empty");
      if (empty) empty.remove();
      var li = el("li", { class: "ev ev-" + e.kind, "data-event-id": e.id },
        el("time", { datetime: e.created_at, title: new Date(e.created_at).toLocaleString() },
          clockText(e.created_at)),
        " ", el("span", { class: "ev-kind" }, e.kind),
        " ", el("span", { class: "ev-msg" }, e.message),
        e.actor ? el("span", { class: "muted" }, " · " + e.actor) : null);
      // keep the time line in id order even if a catch-up arrives after a live event
      var after = null;
      list.querySelectorAll("[data-event-id]").forEach(function (node) {
        if (after === null && Number(node.dataset.eventId) > e.id) after = node;
      });
      list.insertBefore(li, after);
      flash(li);
      lastEvent = Math.max(lastEvent, e.id);
      var limit = Number(list.dataset.limit) || 200;
      while (list.children.length > limit) list.firstElementChild.remove();
    }

    function applyTarget(t) {
      var order = { stable: 0, canary: 1 };
      var slots = Object.keys(t.slots || {}).map(function (name) {
        return Object.assign({ name: name }, t.slots[name]);
      });
      slots.sort(function (a, b) {
        var ra = a.role in order ? order[a.role] : 2;
        var rb = b.role in order ? order[b.role] : 2;
        return ra - rb || (a.name < b.name ? -1 : 1);
      });
      var rows = slots.map(function (s) {
        var weight = s.weight || 0;
        var instances = (s.instances || []).map(function (i) {
          return el("li", { class: "inst inst-" + i.state },
            el("code", null, i.id), " " + (i.version || "") + " ",
            el("span", { class: "inst-state" }, i.state));
        });
        if (!instances.length) instances = [el("li", { class: "muted" }, "none")];
        return el("tr", null,
          el("td", null, el("b", null, s.name), s.role ? " " : null,
            s.role ? el("span", { class: "muted" }, s.role) : null),
          el("td", null, s.version || "—"),
          el("td", null, (s.ready || 0) + "/" + (s.desired || 0)),
          el("td", { class: "weight" },
            el("progress", { max: "100", value: String(weight) }, weight + "%"), " " + weight + "%"),
          el("td", { class: "instances-cell" }, el("ul", { class: "instances" }, ...instances)));
      });
      if (!rows.length) {
        rows = [el("tr", { class: "empty" },
          el("td", { colspan: "5", class: "muted" }, "Nothing observed yet."))];
      }
      document.querySelector("[data-slots]").replaceChildren(...rows);
      var observed = document.querySelector("[data-observed]");
      if (observed) {
        observed.replaceChildren(
          t.observed_at ? "observed " : "",
          t.observed_at ? agoTime(t.observed_at) : "",
          t.endpoint ? (t.observed_at ? " · " : "") + t.endpoint : "");
      }
    }

    // --- the buttons: confirm, then POST with fetch; the WebSocket shows the outcome ----------

    var dialog = document.querySelector("[data-confirm-dialog]");
    var errorEl = document.querySelector("[data-action-error]");
    var statusLine = document.querySelector("[data-action-status]");

    function confirmAction(form) {
      return new Promise(function (resolve) {
        var text = form.dataset.confirm;
        if (!dialog || typeof dialog.showModal !== "function") {
          resolve(window.confirm(text) ? { reason: "" } : null);
          return;
        }
        var reasonLabel = dialog.querySelector("[data-confirm-reason]");
        var input = reasonLabel.querySelector("input");
        dialog.querySelector("[data-confirm-text]").textContent = text;
        reasonLabel.hidden = !("takesReason" in form.dataset);
        input.value = "";
        dialog.returnValue = "";
        dialog.addEventListener("close", function () {
          resolve(dialog.returnValue === "ok" ? { reason: input.value.trim() } : null);
        }, { once: true });
        dialog.showModal();
        (reasonLabel.hidden ? dialog.querySelector("[data-confirm-ok]") : input).focus();
      });
    }

    function showError(text) {
      errorEl.textContent = text;
      errorEl.hidden = false;
      statusLine.textContent = "";
    }

    function send(form, reason) {
      var name = form.dataset.action;
      var body = new FormData(form);
      if (reason) body.set("reason", reason);
      busy = true;
      applyButtons();
      errorEl.hidden = true;
      statusLine.textContent = labels[name] + "…";
      return fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json" }
      })
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (data) {
            if (response.ok && data) {
              statusLine.textContent = data.message || "";
              if (data.redirect) location.assign(data.redirect);
              else if (data.deployment) applyDeployment(data.deployment);
            } else if (data && data.message) {
              showError(data.message);
            } else {
              showError("Switchyard refused the request (HTTP " + response.status + "); " +
                "reload the page and try again.");
            }
          });
        })
        .catch(function (err) {
          showError("Could not reach Switchyard (" + err.message + "); nothing was changed.");
        })
        .then(function () {
          busy = false;
          applyButtons();
        });
    }

    actions.querySelectorAll("form[data-action]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (busy) return;
        confirmAction(form).then(function (answer) {
          if (answer) send(form, answer.reason);
        });
      });
    });

    live(function () { return main.dataset.ws + "?after=" + lastEvent; }, function (message) {
      if (message.type === "deployment") applyDeployment(message.data);
      else if (message.type === "event") applyEvent(message.data);
      else if (message.type === "target") applyTarget(message.data);
    });
  }

  // --- start ----------------------------------------------------------------------------------

  refreshTimes();
  setInterval(refreshTimes, 30000);
  if (main && "WebSocket" in window) {
    if (main.dataset.live === "board") initBoard();
    else if (main.dataset.live === "deployment") initDeployment();
  }
})();
