/* Switchyard live pages: plain JS, no dependencies, no inline scripts.
 *
 * This file holds what every page shares (window.Switchyard: DOM helpers, times, the WebSocket
 * connection) and the board. The deployment page adds deployment.js and charts.js.
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

  function flash(node) {
    node.classList.remove("changed");
    void node.offsetWidth; // restart the animation
    node.classList.add("changed");
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
  // at once when the browser comes back online or the tab becomes visible again. path() is
  // called for every attempt, so a page can ask for what it missed. 4401/4403/4404 are final.
  function live(path, onMessage) {
    var attempt = 0;
    var socket = null;
    var timer = null;
    var openedAt = 0;
    var stopped = false;
    var FINAL = {
      4401: "signed out: reload to sign in",
      4403: "not allowed to see this",
      4404: "not found"
    };

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
        // one message, or the messages of one change as an array (releases/live/events.py)
        (Array.isArray(message) ? message : [message]).forEach(function (one) {
          if (one && one.type) onMessage(one);
        });
      };
      socket.onclose = function (event) {
        socket = null;
        if (FINAL[event.code]) {
          stopped = true;
          setStatus(FINAL[event.code], "error");
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

    function now() {
      if (!stopped && socket === null && timer !== null) {
        clearTimeout(timer);
        open();
      }
    }

    window.addEventListener("online", now);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") now();
    });
    open();
  }

  window.Switchyard = Object.assign(window.Switchyard || {}, {
    el: el, words: words, badge: badge, flash: flash, since: since, agoTime: agoTime,
    clockText: clockText, refreshTimes: refreshTimes, live: live, setStatus: setStatus
  });

  // --- filters that apply themselves ----------------------------------------------------------

  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.querySelectorAll("[data-nojs]").forEach(function (node) { node.hidden = true; });
    form.addEventListener("change", function () { form.requestSubmit ? form.requestSubmit() : form.submit(); });
  });

  // --- the board ------------------------------------------------------------------------------

  var board = document.querySelector("table[data-board]");

  function url(pattern, values) {
    return pattern.replace(/__(\w+)__/g, function (_, key) {
      return encodeURIComponent(values[key]);
    });
  }

  function releaseUrl(service, version) {
    var pattern = board ? board.dataset.releaseUrl : "/services/__service__/releases/__version__/";
    return url(pattern, { service: service, version: version });
  }

  // The inside of a cell, as templates/releases/_cell.html draws it.
  function activeBox(d) {
    var weights = d.weights || {};
    var canary = weights.canary || 0;
    return el(
      "a",
      { class: "cell-active state-" + d.state, href: d.links && d.links.page },
      badge(d.state),
      el("span", { class: "cell-line" },
        el("span", { class: "kind" }, (d.strategy && d.strategy.kind) || ""), " → " + d.target_version),
      d.step && d.step.description ? el("span", { class: "cell-line step" }, d.step.description) : null,
      Object.keys(weights).length
        ? el("span", { class: "cell-line weights" },
          el("span", { class: "mini-split", "aria-hidden": "true" },
            el("span", { style: "width: " + Number(canary) + "%" })),
          " canary " + canary + "%")
        : null
    );
  }

  function renderCell(td, cell) {
    var d = cell.deployment;
    td.replaceChildren(
      el("div", { class: "cell-stable" },
        cell.version
          ? el("a", { class: "version", href: releaseUrl(cell.service, cell.version), "data-cell-version": "" },
            cell.version)
          : el("span", { class: "version none", "data-cell-version": "" }, "not deployed")),
      el("div", { class: "cell-shipped muted", "data-cell-shipped": "" },
        cell.shipped && cell.shipped.at ? agoTime(cell.shipped.at) : null,
        cell.shipped && cell.shipped.at ? " by " + (cell.shipped.by || "switchyard") : null),
      el("div", { "data-cell-active": "" },
        d && d.active
          ? activeBox(d)
          : cell.failed
            ? el("a", { class: "cell-failed", href: cell.failed.page },
              badge(cell.failed.state), " " + cell.failed.version)
            : null),
      el("div", { class: "cell-alert-text", "data-cell-alert": "" }, cell.alert || ""),
      cell.runs_on ? el("div", { class: "cell-where muted small", "data-cell-where": "" }, cell.runs_on) : ""
    );
    td.classList.remove("cell-empty");
    td.classList.toggle("cell-alert", Boolean(cell.alert));
  }

  function findCell(service, environment) {
    var key = service + "/" + environment;
    var found = null;
    document.querySelectorAll("[data-cell]").forEach(function (node) {
      if (node.dataset.cell === key) found = node;
    });
    return found;
  }

  function applyCell(cell) {
    var td = findCell(cell.service, cell.environment);
    if (!td) return false; // filtered out, or created after the page loaded
    var d = cell.deployment;
    var signature = JSON.stringify([
      cell.version, d && d.id, d && d.state, d && d.step, d && d.weights, cell.alert,
      cell.shipped && cell.shipped.id
    ]);
    var changed = td.dataset.sig !== undefined && td.dataset.sig !== signature;
    td.dataset.sig = signature;
    renderCell(td, cell);
    if (changed) flash(td);
    return true;
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
    // as templates/releases/_deployment_row.html draws it (labels for the phone's stacked rows)
    var undoes = d.rollback_of ? [
      " ", el("span", { class: "badge rollback-mark", "data-rollback-of": d.rollback_of }, "rollback"),
      " ", el("span", { class: "muted small" }, "undoes ",
        el("a", { href: "/deployments/" + Number(d.rollback_of) + "/" }, "#" + d.rollback_of))
    ] : [];
    row = el("tr", { "data-deployment-row": d.id, class: d.rollback_of ? "is-rollback" : "" },
      el("td", { "data-label": "#" }, el("a", { href: d.links.page }, "#" + d.id)),
      el("td", { "data-label": "Service" }, d.service),
      el("td", { "data-label": "Env" }, d.environment),
      el.apply(null, ["td", { "data-label": "Version" },
        el("a", { href: releaseUrl(d.service, d.target_version) }, d.target_version),
        d.stable_version ? el("span", { class: "muted" }, " from " + d.stable_version) : null
      ].concat(undoes)),
      el("td", { "data-label": "State" }, state),
      el("td", { "data-label": "Strategy" }, (d.strategy && d.strategy.kind) || ""),
      el("td", { "data-label": "Created" }, d.created_at ? agoTime(d.created_at) : ""),
      el("td", { "data-label": "By" }, d.created_by || "switchyard"));
    var empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    tbody.prepend(row);
    flash(row);
    var limit = Number(table.dataset.recentLimit) || 12;
    while (tbody.rows.length > limit) tbody.deleteRow(-1);
  }

  // Arrow keys move between cells (a roving tabindex: one cell is in the tab order at a time);
  // Enter opens the cell's active deployment, else its last failure, else its release.
  function keyboard() {
    if (!board) return;
    var rows = Array.prototype.slice.call(board.tBodies[0].rows);
    var grid = rows.map(function (tr) { return Array.prototype.slice.call(tr.querySelectorAll("td")); });
    if (!grid.length || !grid[0].length) return;
    grid.forEach(function (cells) { cells.forEach(function (td) { td.tabIndex = -1; }); });
    grid[0][0].tabIndex = 0;

    function focus(r, c) {
      r = Math.max(0, Math.min(grid.length - 1, r));
      c = Math.max(0, Math.min(grid[r].length - 1, c));
      board.querySelectorAll("td[tabindex='0']").forEach(function (td) { td.tabIndex = -1; });
      grid[r][c].tabIndex = 0;
      grid[r][c].focus();
    }

    board.addEventListener("keydown", function (event) {
      var td = event.target.closest && event.target.closest("td[data-cell]");
      if (!td || event.target !== td) return;
      var r = -1;
      var c = -1;
      grid.forEach(function (cells, i) {
        var j = cells.indexOf(td);
        if (j !== -1) { r = i; c = j; }
      });
      if (r === -1) return;
      var moves = {
        ArrowUp: [r - 1, c], ArrowDown: [r + 1, c], ArrowLeft: [r, c - 1], ArrowRight: [r, c + 1],
        Home: [r, 0], End: [r, grid[r].length - 1]
      };
      if (moves[event.key]) {
        event.preventDefault();
        focus(moves[event.key][0], moves[event.key][1]);
      } else if (event.key === "Enter" || event.key === " ") {
        var link = td.querySelector(".cell-active") || td.querySelector(".cell-failed") ||
          td.querySelector("a.version");
        if (link) {
          event.preventDefault();
          link.click();
        }
      }
    });
    board.addEventListener("focusin", function (event) {
      var td = event.target.closest && event.target.closest("td[data-cell]");
      if (td && td.tabIndex !== 0) {
        board.querySelectorAll("td[tabindex='0']").forEach(function (n) { n.tabIndex = -1; });
        td.tabIndex = 0;
      }
    });
  }

  function initBoard() {
    keyboard();
    live(function () { return main.dataset.ws; }, function (message) {
      if (message.type === "board.cell") {
        if (applyCell(message.data)) applyRecent(message.data.deployment);
      }
    });
  }

  // --- start ----------------------------------------------------------------------------------

  refreshTimes();
  setInterval(refreshTimes, 30000);
  if (main && main.dataset.live === "board") {
    if ("WebSocket" in window) initBoard();
    else keyboard();
  }
})();
