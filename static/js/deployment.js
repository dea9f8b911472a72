/* The deployment page, kept live over /ws/deployments/<id>/ (messages: releases/events.py).
 *
 * - deployment: state badge, summary, traffic split bar, step list and pause countdown,
 *   analysis runs; when the state changes, the action buttons are re-fetched from the server
 *   (/deployments/<id>/actions/), which alone decides what is enabled and why not.
 * - event: appended to the time line (any kind; ordered by id; missed ones come on reconnect).
 * - target: the slots and instances table.
 * - metrics: request samples for the four charts (the whole window on connect, then new ones).
 * Buttons: a confirmation dialog naming what will happen, then a POST with fetch; the answer
 * is applied at once and the WebSocket brings the rest.
 */
(function () {
  "use strict";

  var S = window.Switchyard;
  var main = document.querySelector("main[data-live='deployment']");
  if (!S || !main) return;
  var el = S.el;
  var words = S.words;

  var version = Number(main.dataset.version) || 0;
  var lastEvent = Number(main.dataset.lastEvent) || 0;
  var state = main.dataset.state;
  var lastButtonsKey = null; // the page came with its buttons for its state
  var renderedState = state;
  var busy = false;

  function $(selector) { return document.querySelector(selector); }

  function setText(selector, text) {
    var node = $(selector);
    if (node) node.textContent = text;
    return node;
  }

  // --- the buttons ----------------------------------------------------------------------------

  var actions = $("[data-actions]");
  var dialog = $("[data-confirm-dialog]");
  var errorEl = $("[data-action-error]");
  var statusLine = $("[data-action-status]");
  var actionsWanted = 0;

  function setBusy(value) {
    busy = value;
    actions.querySelectorAll("button").forEach(function (b) {
      if (value) {
        b.dataset.wasDisabled = b.disabled ? "1" : "";
        b.disabled = true;
      } else if (b.dataset.wasDisabled !== undefined) {
        b.disabled = b.dataset.wasDisabled === "1";
        delete b.dataset.wasDisabled;
      }
    });
  }

  // Re-render the buttons from the server (enabled or not, why, what the confirmation says).
  function refreshActions() {
    var ticket = ++actionsWanted;
    fetch(actions.dataset.actionsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || ticket !== actionsWanted) return;
        actions.innerHTML = html;
        if (busy) setBusy(true);
      })
      .catch(function () { /* the next change tries again */ });
  }

  function confirmAction(form) {
    return new Promise(function (resolve) {
      var text = form.dataset.confirm;
      if (!dialog || typeof dialog.showModal !== "function") {
        resolve(window.confirm(text) ? { reason: "" } : null);
        return;
      }
      var reasonLabel = dialog.querySelector("[data-confirm-reason]");
      var input = reasonLabel.querySelector("input");
      dialog.querySelector("[data-confirm-title]").textContent = form.dataset.label + "?";
      dialog.querySelector("[data-confirm-text]").textContent = text;
      dialog.querySelector("[data-confirm-ok]").textContent = form.dataset.label;
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
    var body = new FormData(form);
    body.set("confirmed", "1");
    if (reason) body.set("reason", reason);
    setBusy(true);
    errorEl.hidden = true;
    statusLine.textContent = form.dataset.label + "…";
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
        setBusy(false);
        refreshActions();
      });
  }

  actions.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    if (busy) return;
    confirmAction(form).then(function (answer) {
      if (answer) send(form, answer.reason);
    });
  });

  // --- the deployment -------------------------------------------------------------------------

  // what each side is called now (releases/web/deployment.py split_words says the same)
  function splitWords(state) {
    if (state === "succeeded") return { stable: "previous", canary: "stable" };
    if (["rolled_back", "aborted", "failed", "rejected"].indexOf(state) >= 0) {
      return { stable: "stable", canary: "retired" };
    }
    return { stable: "stable", canary: "canary" };
  }

  function applySplit(d) {
    var called = splitWords(d.state);
    // the charts' window follows the deployment (chartWindow)
    if (box && d.started_at) box.dataset.started = Date.parse(d.started_at) / 1000;
    if (box && d.finished_at) box.dataset.finished = Date.parse(d.finished_at) / 1000;
    var weights = d.weights || {};
    var has = Object.keys(weights).length > 0;
    var shares = {
      stable: has ? weights.stable || 0 : (d.stable_version ? 100 : 0),
      canary: has ? weights.canary || 0 : 0,
      experiment: weights.experiment || 0  // an experiment step's slots, together
    };
    var bar = $("[data-split]");
    var label = [];
    bar.querySelectorAll("[data-seg]").forEach(function (seg) {
      var role = seg.dataset.seg;
      seg.style.width = shares[role] + "%";
      var span = seg.querySelector("span");
      // an experiment's slots together: exp-<deployment>-* (releases/web/deployment.py _split)
      var slot = d.slots && d.slots[role] ? d.slots[role] : "exp-" + d.id + "-*";
      if (span) span.textContent = slot + " " + shares[role] + "%";
      label.push((called[role] || role) + " " + slot + " " + shares[role] + "%");
    });
    document.querySelectorAll("[data-called]").forEach(function (node) {
      node.textContent = called[node.dataset.called] || node.textContent;
    });
    bar.setAttribute("aria-label", label.join(", "));
    document.querySelectorAll("[data-w]").forEach(function (node) {
      node.textContent = shares[node.dataset.w] + "%";
    });
  }

  function applySteps(d) {
    var steps = document.querySelectorAll("[data-steps] li");
    steps.forEach(function (li, i) {
      var done = d.state === "succeeded" || i < d.step.index;
      var current = !done && d.active && i === d.step.index;
      li.className = done ? "done" : current ? "current" : "";
      if (current) li.setAttribute("aria-current", "step");
      else li.removeAttribute("aria-current");
    });
    var stepEl = $("[data-d-step]");
    var total = Number(stepEl.dataset.stepsTotal) || 0;
    if (d.step && d.step.description) {
      stepEl.replaceChildren(
        el("span", { class: "step-no" }, (d.step.index + 1) + (total ? "/" + total : "")),
        " " + d.step.description);
    } else {
      stepEl.textContent = "—";
    }
    applyPause(d.pause);
  }

  var PAUSE_TEXT = {
    promotion: ["Waiting for someone to press ", el("b", null, "Promote"), "."],
    approval: ["Waiting for an approval."],
    operator: ["Paused by an operator: ", el("b", null, "Resume"), " continues the rollout."]
  };

  function applyPause(pause) {
    var note = $("[data-pause]");
    if (!note) return;
    note.hidden = !pause;
    if (!pause) {
      note.dataset.pauseKind = "";
      note.dataset.until = "";
      return;
    }
    var key = pause.kind + "|" + (pause.until || "") + "|" + (pause.why || "");
    if (note.dataset.pauseKey === key) return;
    note.dataset.pauseKey = key;
    note.dataset.pauseKind = pause.kind;
    note.dataset.until = pause.until || "";
    if (pause.kind === "timed") {
      note.replaceChildren("Pausing: ", el("b", { "data-countdown": "" }), " before the next step (Promote skips the wait).");
      tickCountdown();
    } else {
      note.replaceChildren.apply(note, (PAUSE_TEXT[pause.kind] || [words(pause.kind)]).map(function (n) {
        return n instanceof Node ? n.cloneNode(true) : n;
      }));
      if (pause.why) note.append(el("span", { class: "pause-why", "data-pause-why": "" }, " " + pause.why));
    }
  }

  function tickCountdown() {
    var note = $("[data-pause]");
    var out = note && note.querySelector("[data-countdown]");
    if (!out || !note.dataset.until) return;
    var left = Math.max(0, Math.round((Date.parse(note.dataset.until) - Date.now()) / 1000));
    var minutes = Math.floor(left / 60);
    var seconds = left % 60;
    out.textContent = (minutes ? minutes + " min " : "") + seconds + " s left";
  }

  var analysisSig = null;

  // As templates/releases/deployment/_analysis.html draws it; every metric's text is the
  // server's (m.shown, from releases/live/readable.py), never a number formatted here.
  function metricRow(m) {
    var shown = m.shown || {};
    var verdict = m.verdict || "pending";
    return el("tr", { "data-metric": m.name },
      el("th", { scope: "row", "data-label": "Metric" }, m.name + " ",
        el("span", { class: "muted small" }, m.measurements + "/" + m.count)),
      el("td", { "data-label": "Baseline", "data-side": "baseline" }, shown.baseline || "—"),
      el("td", { "data-label": "Canary", "data-side": "canary" }, shown.canary || "—"),
      el("td", { "data-label": "Difference" },
        el("span", { "data-shift": "" }, shown.statistic || shown.shift || "—"),
        shown.evidence ? el("br") : null,
        shown.evidence ? el("span", { "data-evidence": "" }, shown.evidence) : null),
      el("td", { "data-label": "Threshold" }, m.threshold || "—"),
      el("td", { "data-label": "Verdict" }, el("span", { class: "badge verdict-" + verdict }, verdict),
        m.why ? el("span", { class: "muted why-text" }, " " + m.why) : null));
  }

  function renderAnalysis(runs) {
    var box = $("[data-analysis]");
    var sig = JSON.stringify(runs || []);
    if (!box || sig === analysisSig) return;
    if (analysisSig === null && !(runs || []).length) { analysisSig = sig; return; }
    analysisSig = sig;
    if (!runs || !runs.length) {
      box.replaceChildren(el("p", { class: "muted empty-state" },
        "No analysis has run for this deployment. When a step analyses the new release, each " +
        "metric shows here: baseline (stable) against canary, the threshold, the verdict and why."));
      return;
    }
    var heads = ["Metric", "Baseline (stable)", "Canary", "Difference", "Threshold", "Verdict"];
    box.replaceChildren.apply(box, runs.map(function (run) {
      var rows = (run.metrics || []).map(metricRow);
      return el("article", { class: "run" },
        el("h3", null, el("span", { class: "badge verdict-" + run.phase }, run.decision || run.phase),
          " " + (run.name || "analysis"),
          run.step_index != null ? el("span", { class: "muted small" }, " step " + (run.step_index + 1)) : null),
        run.why ? el("p", { class: "why" }, run.why) : null,
        rows.length
          ? el("table", { class: "list compact stack analysis-table" },
            el("thead", null, el("tr", null, ...heads.map(function (h) {
              return el("th", { scope: "col" }, h);
            }))),
            el("tbody", null, ...rows))
          : null);
    }));
  }

  // What the page says loudest (and the tab title) when the deployment needs the person watching
  // or has gone wrong; as templates/releases/deployment.html draws it on load.
  var baseTitle = document.title;
  function attention(d) {
    var pause = d.pause || {};
    if (d.state === "failed") return ["Failed", "This deployment failed: " + (d.failure_reason || d.message || "see the events.")];
    if (d.state === "rolled_back") return ["Rolled back", "This deployment was rolled back: every request is on the stable release."];
    if (d.state === "rolling_back") return ["Rolling back", "Rolling back: " + (d.failure_reason || d.message || "")];
    if (d.state === "awaiting_approval" || pause.kind === "approval") return ["Needs approval", "Waiting for an approval before it can go on."];
    if (pause.kind === "promotion") return ["Waiting for you", "Waiting for someone to press Promote."];
    if (pause.kind === "operator") return ["Paused", "Paused: Resume continues the rollout."];
    return null;
  }

  function applyAttention(d) {
    var box = $("[data-page-alert]");
    var said = attention(d);
    document.title = said ? "(" + said[0] + ") " + baseTitle.replace(/^\([^)]*\) /, "") : baseTitle.replace(/^\([^)]*\) /, "");
    if (!box) return;
    box.hidden = !said;
    box.className = "page-alert" + (said ? " alert-" + d.state : "");
    if (said && box.textContent !== said[1]) box.textContent = said[1];
  }

  function applyDeployment(d) {
    if (d.version < version) return; // an older message overtaken by a newer one
    // what the buttons depend on (not every tick: 200 open pages would each fetch them)
    var buttonsKey = [d.state, d.intent, d.step && d.step.index].join("|");
    var changedState =
      lastButtonsKey === null ? d.state !== renderedState : buttonsKey !== lastButtonsKey;
    lastButtonsKey = buttonsKey;
    version = d.version;
    state = d.state;
    main.dataset.state = d.state;
    var badgeEl = $("[data-d-state]");
    badgeEl.className = "badge big state-" + d.state;
    badgeEl.textContent = words(d.state);
    setText("[data-d-kind]", (d.strategy && d.strategy.kind) || "—");
    setText("[data-d-intent]", d.intent || "—");
    $("[data-d-finished]").replaceChildren(d.finished_at ? S.agoTime(d.finished_at) : "—");
    var messageEl = setText("[data-d-message]", d.message || "");
    messageEl.hidden = !d.message || d.message === d.failure_reason;
    var failure = $("[data-d-failure]");
    failure.querySelector("span").textContent = d.failure_reason || "";
    failure.hidden = !d.failure_reason;
    applySplit(d);
    applySteps(d);
    renderAnalysis(d.analysis);
    watchRuns(d.analysis);
    applyAttention(d);
    if (changedState) refreshActions();
  }

  // --- the time line and the slots ------------------------------------------------------------

  function applyEvent(e) {
    var list = $("[data-events]");
    if (list.querySelector('[data-event-id="' + Number(e.id) + '"]')) return;
    var empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    var li = el("li", { class: "ev ev-" + e.kind, "data-event-id": e.id },
      el("time", { datetime: e.created_at, title: new Date(e.created_at).toLocaleString() },
        S.clockText(e.created_at)),
      " ", el("span", { class: "ev-kind" }, e.kind),
      " ", el("span", { class: "ev-msg" }, e.message),
      e.actor ? el("span", { class: "muted" }, " · " + e.actor) : null);
    // keep the time line in id order even if a catch-up arrives after a live event
    var after = null;
    list.querySelectorAll("[data-event-id]").forEach(function (node) {
      if (after === null && Number(node.dataset.eventId) > e.id) after = node;
    });
    list.insertBefore(li, after);
    S.flash(li);
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
        return el("li", { class: "inst inst-" + i.state, title: i.address || "" },
          el("code", null, i.id), " " + (i.version || "") + " ",
          el("span", { class: "inst-state" }, i.state),
          i.reason ? el("span", { class: "inst-reason" }, " " + i.reason) : null,
          i.restarts ? el("span", { class: "muted" }, " ↻" + i.restarts) : null);
      });
      if (!instances.length) instances = [el("li", { class: "muted" }, "none")];
      return el("tr", null,
        el("td", { "data-label": "Slot" }, el("b", null, s.name), s.role ? " " : null,
          s.role ? el("span", { class: "muted" }, s.role) : null),
        el("td", { "data-label": "Version" }, s.version || "—"),
        el("td", { "data-label": "Ready" }, (s.ready || 0) + "/" + (s.desired || 0)),
        el("td", { class: "weight", "data-label": "Weight" },
          el("progress", { max: "100", value: String(weight) }, weight + "%"), " " + weight + "%"),
        el("td", { class: "instances-cell", "data-label": "Instances" }, el("ul", { class: "instances" }, ...instances)));
    });
    if (!rows.length) {
      rows = [el("tr", { class: "empty" },
        el("td", { colspan: "5", class: "muted" }, "Nothing observed yet."))];
    }
    $("[data-slots]").replaceChildren(...rows);
    var observed = $("[data-observed]");
    if (observed) {
      observed.replaceChildren(
        t.observed_at ? "observed " : "",
        t.observed_at ? S.agoTime(t.observed_at) : "",
        t.endpoint ? (t.observed_at ? " · " : "") + t.endpoint : "");
    }
  }

  // --- the charts -----------------------------------------------------------------------------

  var WINDOW = 900;
  var box = $("[data-metrics]");
  var slotOf = { stable: box.dataset.stableSlot, canary: box.dataset.canarySlot };
  var samples = [];
  var lastSample = null;
  var FORMATS = {
    rps: function (v) { return v.toFixed(1) + "/s"; }, // as the server writes it (show_value)
    error_rate: function (v) { return (100 * v).toFixed(2) + "%"; }, // as show_value writes it
    p95_ms: function (v) { return v.toFixed(0) + " ms"; },
    p99_ms: function (v) { return v.toFixed(0) + " ms"; }
  };
  var AXIS = {
    rps: function (v) { return v < 10 && v % 1 ? v.toFixed(1) : v.toFixed(0); },
    error_rate: function (v) { return +(100 * v).toFixed(2) + "%"; },
    p95_ms: function (v) { return v.toFixed(0) + " ms"; },
    p99_ms: function (v) { return v.toFixed(0) + " ms"; }
  };
  var MIN_TOP = { rps: 1, error_rate: 0.05, p95_ms: 10, p99_ms: 10 };
  var charts = {};
  box.querySelectorAll("[data-chart]").forEach(function (figure) {
    var key = figure.dataset.chart;
    var format = FORMATS[key] || String;
    charts[key] = {
      figure: figure,
      chart: S.chart(figure.querySelector("[data-plot]"), {
        window: WINDOW,
        label: figure.querySelector(".chart-title").textContent,
        format: AXIS[key] || String,
        minTop: MIN_TOP[key] || 0
      }),
      format: format
    };
  });
  var drawPending = false;

  // the window follows the deployment: from its start (or the last 15 minutes, all that is
  // kept, for a long one) to now, or to shortly after it finished
  function chartWindow() {
    var clockNow = Date.now() / 1000;
    var started = Number(box.dataset.started) || null;
    var finished = Number(box.dataset.finished) || null;
    var end = finished ? Math.min(clockNow, finished + 30) : clockNow;
    var start = started ? Math.max(started - 10, clockNow - WINDOW) : end - WINDOW;
    return { start: Math.min(start, end - 60), end: end, ended: !!finished && end < clockNow };
  }

  // marks where a step, a weight change or a state change happened (from the events list)
  var MARKED = { step: 1, state: 1, failure: 1, intent: 1, promote: 1, rollback: 1 };
  function chartMarks() {
    var marks = [];
    document.querySelectorAll("[data-events] li[data-event-id]").forEach(function (li) {
      var kind = li.querySelector(".ev-kind");
      var time = li.querySelector("time[datetime]");
      if (!kind || !time || !MARKED[kind.textContent.trim()]) return;
      var text = (li.querySelector(".ev-msg") || li).textContent.trim();
      var weight = /(\d+)\s*%/.exec(text);
      var step = /step (\d+)/.exec(text);
      marks.push({
        t: Date.parse(time.getAttribute("datetime")) / 1000,
        label: weight ? weight[1] + "%" : step ? "step " + step[1] : kind.textContent.trim(),
        title: time.textContent + " " + text
      });
    });
    return marks;
  }

  function drawCharts() {
    drawPending = false;
    var win = chartWindow();
    var now = win.end;
    var marks = chartMarks();
    samples = samples.filter(function (s) { return s.t >= Date.now() / 1000 - WINDOW; });
    var split = splitRates(samples, slotOf);
    drawSplit(split);
    Object.keys(charts).forEach(function (key) {
      var series = {};
      ["stable", "canary"].forEach(function (role) {
        series[role] = samples.map(function (s) {
          var slot = s.slots[slotOf[role]];
          return [s.t, slot ? slot[key] : null];
        });
      });
      charts[key].chart.draw(series, now, { start: win.start, marks: marks, ended: win.ended });
      var latest = samples.length ? samples[samples.length - 1] : null;
      ["stable", "canary"].forEach(function (role) {
        var out = charts[key].figure.querySelector('[data-latest="' + role + '"]');
        var slot = latest && latest.slots[slotOf[role]];
        if (split && SPLIT_KEYS[key]) slot = split.sides[role];
        var value = slot ? slot[key] : null;
        if (out) out.textContent = value == null ? "—" : charts[key].format(value);
      });
    });
    var empty = $("[data-metrics-empty]");
    if (empty) empty.hidden = samples.length > 0;
    drawDarkLaunch(samples.length ? samples[samples.length - 1].dark_launch : null);
  }

  // Each side's request rate and share over the latest samples taken at one split (at most
  // STEADY seconds), read against the weights; the same as releases/live/charts.split_rates.
  var STEADY = 30;
  var SPLIT_KEYS = { rps: 1, error_rate: 1 }; // their legends read over the split's seconds
  function splitRates(list, sides) {
    if (!list.length) return null;
    var latest = list[list.length - 1];
    // the same split whatever the order of the keys (as Python compares the dicts)
    var key = function (w) {
      return w ? Object.keys(w).sort().map(function (n) { return n + "=" + w[n]; }).join(",") : null;
    };
    var weights = key(latest.weights);
    var same = function (s) { return !!s && key(s.weights) === weights; };
    var chosen = [];
    for (var i = list.length - 1; i >= 0; i--) {
      var s = list[i];
      if (s.seconds == null || s.t - s.seconds < latest.t - STEADY - 0.5) break;
      if (weights !== null && (!same(s) || !same(list[i - 1]))) break;
      chosen.push(s);
    }
    if (!chosen.length) return null;
    var seconds = 0, total = 0;
    chosen.forEach(function (s) {
      seconds += s.seconds;
      Object.keys(s.slots).forEach(function (n) { total += s.slots[n].requests || 0; });
    });
    var weightSum = 0;
    Object.keys(latest.weights || {}).forEach(function (n) { weightSum += latest.weights[n]; });
    var out = { seconds: seconds, requests: total, sides: {} };
    Object.keys(sides).forEach(function (side) {
      var requests = 0, errors = 0;
      chosen.forEach(function (s) {
        var slot = s.slots[sides[side]] || {};
        requests += slot.requests || 0;
        errors += slot.errors || 0;
      });
      out.sides[side] = {
        requests: requests,
        rps: requests / seconds,
        error_rate: requests ? errors / requests : null,
        share: total ? requests / total : null,
        weight: weightSum ? 100 * (latest.weights[sides[side]] || 0) / weightSum : null
      };
    });
    return out;
  }

  function drawSplit(split) {
    var line = $("[data-split-rates]");
    if (!line) return;
    line.hidden = !split;
    if (!split) return;
    line.querySelector("[data-split-seconds]").textContent = Math.round(split.seconds);
    line.querySelector("[data-split-requests]").textContent = split.requests;
    ["stable", "canary"].forEach(function (side) {
      var v = split.sides[side];
      var share = line.querySelector('[data-split-share="' + side + '"]');
      share.dataset.value = v.share == null ? "" : v.share;
      share.textContent = v.share == null ? "—" : Math.round(100 * v.share) + "%";
      var weight = line.querySelector('[data-split-weight="' + side + '"]');
      weight.dataset.value = v.weight == null ? "" : v.weight;
      weight.textContent = v.weight == null ? "" : " at weight " + Math.round(v.weight) + "%";
    });
  }

  // the router's comparison of mirrored answers with the users' (a dark launch)
  function drawDarkLaunch(dl) {
    var panel = $("[data-dark-launch]");
    if (!panel || !dl) return;
    panel.hidden = false;
    var lat = dl.latency_ms || {};
    var values = {
      compared: dl.compared, status_mismatches: dl.status_mismatches,
      body_mismatches: dl.body_mismatches, mirror_errors: dl.mirror_errors,
      mismatch_rate: dl.mismatch_rate == null ? "—" : Math.round(100 * dl.mismatch_rate) + "%",
      stable_p50: lat.stable_p50, mirror_p50: lat.mirror_p50, difference_p50: lat.difference_p50,
      stable_p99: lat.stable_p99, mirror_p99: lat.mirror_p99
    };
    Object.keys(values).forEach(function (key) {
      var out = panel.querySelector('[data-dl="' + key + '"]');
      if (out) out.textContent = values[key] == null ? "—" : String(values[key]);
    });
    var list = panel.querySelector("[data-dl-samples]");
    if (list) {
      list.replaceChildren.apply(list, (dl.samples || []).map(function (s) {
        var li = document.createElement("li");
        var side = function (x) { return x.status != null ? x.status : x.error; };
        li.textContent = s.kind + " · " + s.method + " " + s.path + " · stable " + side(s.stable) +
          " · canary " + side(s.mirror);
        return li;
      }));
    }
  }

  function scheduleDraw() {
    if (!drawPending) {
      drawPending = true;
      requestAnimationFrame(drawCharts);
    }
  }

  function applyMetrics(data) {
    if (data.replace) {
      samples = [];
      lastSample = null;
    }
    data.samples.forEach(function (s) {
      if (lastSample === null || s.t > lastSample) {
        samples.push(s);
        lastSample = s.t;
      }
    });
    scheduleDraw();
  }

  // --- the analysis charts: each measurement, baseline vs canary, and the metric's limit --------

  var runCharts = $("[data-analysis-charts]");
  var drawnRuns = {}; // "<run id>:<metric>" -> chart
  var loading = false, loadAgain = null, runsSig = null;

  function loadRunCharts(ids) {
    if (!runCharts || !ids.length) return;
    if (loading) { loadAgain = ids; return; }
    loading = true;
    var id = ids[ids.length - 1]; // the latest run
    fetch("/api/v1/analysis-runs/" + Number(id), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (run) { if (run) drawRunCharts(run); })
      .catch(function () {})
      .then(function () {
        loading = false;
        if (loadAgain) { var again = loadAgain; loadAgain = null; loadRunCharts(again); }
      });
  }

  function drawRunCharts(run) {
    Object.keys(drawnRuns).forEach(function (key) {
      if (key.split(":")[0] !== String(run.id)) { drawnRuns[key].figure.remove(); delete drawnRuns[key]; }
    });
    (run.metrics || []).forEach(function (m) {
      var key = run.id + ":" + m.name;
      var entry = drawnRuns[key];
      if (!entry) {
        var plot = el("div", { class: "plot", "data-plot": "" });
        var figure = el("figure", { class: "chart", "data-analysis-chart": m.name },
          el("figcaption", null,
            el("span", { class: "chart-title", text: run.name + ": " + m.name + (m.unit ? " (" + m.unit + ")" : "") }),
            el("span", { class: "legend" },
              el("span", { class: "key key-stable" }, el("i", { "aria-hidden": "true" }), "baseline"), " ",
              el("span", { class: "key key-canary" }, el("i", { "aria-hidden": "true" }), "canary"), " ",
              el("span", { class: "key key-limit" }, el("i", { "aria-hidden": "true" }), "limit"))),
          plot);
        runCharts.append(figure);
        entry = drawnRuns[key] = {
          figure: figure,
          chart: S.chart(plot, {
            label: m.name + ": each measurement, baseline against canary, and the limit",
            format: function (v) { return Math.abs(v) < 1 ? v.toFixed(3) : v.toFixed(0); },
            gap: 1e9, height: 120
          })
        };
      }
      var history = m.history || [];
      var points = history.map(function (h) {
        var value = h.value || {};
        return { t: Date.parse(h.taken_at) / 1000, b: value.baseline, c: value.canary, limit: h.limit };
      }).filter(function (p) { return !isNaN(p.t); });
      var series = {
        stable: points.map(function (p) { return [p.t, typeof p.b === "number" ? p.b : null]; }),
        canary: points.map(function (p) { return [p.t, typeof p.c === "number" ? p.c : null]; }),
        limit: points.map(function (p) { return [p.t, typeof p.limit === "number" ? p.limit : null]; })
      };
      var first = points.length ? points[0].t : Date.now() / 1000;
      var last = points.length ? points[points.length - 1].t : first;
      entry.figure.dataset.measurements = points.length;
      entry.chart.draw(series, last + 1, { start: first - 1, ended: true });
    });
  }

  function runIds(runs) {
    return (runs || []).map(function (r) { return r.id; });
  }

  function watchRuns(runs) {
    var sig = JSON.stringify((runs || []).map(function (r) {
      return [r.id, r.phase, (r.metrics || []).map(function (m) { return m.measurements; })];
    }));
    if (sig === runsSig) return;
    runsSig = sig;
    loadRunCharts(runIds(runs));
  }

  // --- start ----------------------------------------------------------------------------------

  setInterval(tickCountdown, 1000);
  setInterval(scheduleDraw, 5000); // the time axis moves on even without samples
  tickCountdown();
  drawCharts();
  if (runCharts && runCharts.dataset.runs) loadRunCharts(runCharts.dataset.runs.split(" "));
  if ("WebSocket" in window) {
    S.live(function () {
      var query = "?after=" + lastEvent;
      if (lastSample !== null) query += "&since=" + lastSample;
      return main.dataset.ws + query;
    }, function (message) {
      if (message.type === "deployment") applyDeployment(message.data);
      else if (message.type === "event") applyEvent(message.data);
      else if (message.type === "target") applyTarget(message.data);
      else if (message.type === "metrics") applyMetrics(message.data);
    });
  }
})();
