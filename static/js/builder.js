/* The strategy builder on the release page's "Deploy to..." form.
 *
 * The JSON box (#strategy) stays the source of truth and is what the form posts: the builder
 * reads it, shows the kind's fields (a canary's ladder as rows of steps to add, remove and
 * reorder; analysis templates picked from a list), and writes every change back into it. Keys the
 * form does not show (health, route, ...) are kept. Each change is checked by the API's own
 * validator (POST /api/v1/strategies/validate, with the target's provider), whose planned steps
 * or errors are shown live. Without JavaScript the JSON box and "Check the strategy" still work.
 */
(function () {
  "use strict";

  var root = document.querySelector("[data-builder]");
  var box = document.getElementById("strategy");
  var data = document.getElementById("builder-data");
  if (!root || !box || !data) return;
  var config = JSON.parse(data.textContent);
  var form = box.form;
  var kindSelect = root.querySelector("[data-b-kind]");
  var fieldsEl = root.querySelector("[data-b-fields]");
  var stepsWrap = root.querySelector("[data-b-steps-wrap]");
  var stepsEl = root.querySelector("[data-b-steps]");
  var checkEl = root.querySelector("[data-b-check]");
  var noteEl = root.querySelector("[data-b-note]");

  // per kind: [key, label, type ("int" or "text"), hint]
  var FIELDS = {
    canary: [
      ["stable_replicas", "Stable replicas", "int", "instances of the release live now"],
      ["canary_replicas", "Canary replicas", "text", "match_weight, or a number"],
      ["progress_deadline", "Progress deadline", "text", "e.g. 10m: longer without progress rolls back"]
    ],
    blue_green: [
      ["replicas", "Replicas", "int", ""],
      ["preview_replicas", "Preview replicas", "int", "instances on the idle side before the switch"],
      ["auto_promote", "Switch automatically after", "text", "e.g. 30s; empty: wait for Promote"],
      ["scale_down_delay", "Keep the old side for", "text", "e.g. 30s: a rollback is a switch back"]
    ],
    rolling: [
      ["replicas", "Replicas", "int", ""],
      ["batch_size", "Batch size", "text", "instances (1) or a share (25%)"],
      ["max_surge", "Max surge", "text", "extra instances allowed during a batch"],
      ["max_unavailable", "Max unavailable", "text", ""],
      ["min_ready", "Min ready", "text", "e.g. 5s healthy before the next batch"],
      ["progress_deadline", "Progress deadline", "text", "e.g. 10m"]
    ],
    recreate: [["replicas", "Replicas", "int", ""]]
  };
  var STEP_TYPES = [
    ["set_weight", "Send a share to the canary"],
    ["pause", "Pause"],
    ["analysis", "Run an analysis"],
    ["set_canary_scale", "Scale the canary"],
    ["other", "Other (JSON)"]
  ];

  var state = null; // the parsed JSON box
  var uid = 0;

  function el(tag, attrs) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (attrs[key] == null || attrs[key] === false) return;
      if (key === "text") node.textContent = attrs[key];
      else if (key === "class") node.className = attrs[key];
      else node.setAttribute(key, attrs[key] === true ? "" : attrs[key]);
    });
    for (var i = 2; i < arguments.length; i++) {
      if (arguments[i] != null) node.append(arguments[i]);
    }
    return node;
  }

  function parseBox() {
    try {
      var value = JSON.parse(box.value || "{}");
      return value && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch (e) {
      return null;
    }
  }

  function writeBox() {
    box.value = JSON.stringify(state, null, 2);
    scheduleCheck();
  }

  function asValue(type, text) {
    text = text.trim();
    if (text === "") return undefined;
    if (type === "int" || /^\d+$/.test(text)) {
      var n = Number(text);
      return isNaN(n) ? text : n;
    }
    return text;
  }

  // --- the kind's fields --------------------------------------------------------------------

  function renderFields() {
    fieldsEl.textContent = "";
    (FIELDS[state.kind] || []).forEach(function (f) {
      var id = "b-" + f[0];
      var input = el("input", {
        id: id,
        type: f[2] === "int" ? "number" : "text",
        min: f[2] === "int" ? "0" : null,
        inputmode: f[2] === "int" ? "numeric" : null,
        autocomplete: "off",
        "data-b-field": f[0],
        "aria-describedby": f[3] ? id + "-hint" : null
      });
      input.value = state[f[0]] == null ? "" : String(state[f[0]]);
      input.addEventListener("input", function () {
        var v = asValue(f[2], input.value);
        if (v === undefined) delete state[f[0]];
        else state[f[0]] = v;
        writeBox();
      });
      fieldsEl.append(
        el("div", { class: "b-field" },
          el("label", { for: id, text: f[1] }),
          input,
          f[3] ? el("span", { id: id + "-hint", class: "muted small", text: f[3] }) : null)
      );
    });
  }

  // --- a canary's ladder --------------------------------------------------------------------

  function stepType(step) {
    if (!step || typeof step !== "object") return "other";
    var keys = Object.keys(step);
    if (keys.length !== 1) return "other";
    var k = keys[0], v = step[k];
    if (k === "set_weight" && typeof v === "number") return k;
    if (k === "pause" && v && typeof v === "object" && Object.keys(v).every(function (x) { return x === "duration"; })) return k;
    if (k === "analysis" && v && typeof v === "object" && typeof v.template === "string") return k;
    if (k === "set_canary_scale" && v && typeof v === "object" && Object.keys(v).join() === "replicas") return k;
    return "other";
  }

  function fresh(type) {
    if (type === "set_weight") return { set_weight: 20 };
    if (type === "pause") return { pause: { duration: "30s" } };
    if (type === "analysis") return { analysis: { template: config.templates[0] || "" } };
    if (type === "set_canary_scale") return { set_canary_scale: { replicas: 1 } };
    return {};
  }

  function valueInput(step, type, index, label) {
    var id = "b-step-" + (++uid);
    var input, hint = "";
    if (type === "analysis") {
      input = el("select", { id: id, "data-b-step-value": "" });
      if (!config.templates.length) input.append(el("option", { value: "", text: "no templates yet" }));
      config.templates.forEach(function (name) {
        input.append(el("option", { value: name, text: name }));
      });
      if (step.analysis.template && config.templates.indexOf(step.analysis.template) < 0) {
        input.append(el("option", { value: step.analysis.template, text: step.analysis.template + " (unknown)" }));
      }
      input.value = step.analysis.template;
      hint = "template";
    } else if (type === "set_weight") {
      input = el("input", { id: id, type: "number", min: "0", max: "100", "data-b-step-value": "" });
      input.value = step.set_weight;
      hint = "% of requests";
    } else if (type === "set_canary_scale") {
      input = el("input", { id: id, type: "number", min: "0", "data-b-step-value": "" });
      input.value = step.set_canary_scale.replicas;
      hint = "instances";
    } else if (type === "pause") {
      input = el("input", { id: id, type: "text", placeholder: "until promoted", "data-b-step-value": "" });
      input.value = step.pause.duration || "";
      hint = "e.g. 30s; empty: until someone presses Promote";
    } else {
      input = el("input", { id: id, type: "text", class: "mono", "data-b-step-value": "" });
      input.value = JSON.stringify(step);
      hint = "one step as JSON";
    }
    input.setAttribute("aria-label", label + ": " + hint);
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", function () {
      var steps = state.steps;
      var v = input.value.trim();
      if (type === "set_weight") steps[index] = { set_weight: v === "" ? 0 : Number(v) };
      else if (type === "set_canary_scale") steps[index] = { set_canary_scale: { replicas: v === "" ? 0 : Number(v) } };
      else if (type === "pause") steps[index] = { pause: v ? { duration: v } : {} };
      else if (type === "analysis") steps[index] = { analysis: Object.assign({}, steps[index].analysis, { template: v }) };
      else {
        try { steps[index] = JSON.parse(v); input.removeAttribute("aria-invalid"); }
        catch (e) { input.setAttribute("aria-invalid", "true"); return; }
      }
      writeBox();
    });
    return el("span", { class: "b-value" }, input, el("span", { class: "muted small", "aria-hidden": "true", text: hint }));
  }

  function move(index, by) {
    var steps = state.steps, to = index + by;
    if (to < 0 || to >= steps.length) return;
    var moved = steps.splice(index, 1)[0];
    steps.splice(to, 0, moved);
    renderSteps();
    writeBox();
    var button = stepsEl.children[to].querySelector(by < 0 ? "[data-b-up]" : "[data-b-down]");
    (button && !button.disabled ? button : stepsEl.children[to].querySelector("select")).focus();
  }

  function renderSteps() {
    var show = state.kind === "canary";
    stepsWrap.hidden = !show;
    if (!show) return;
    if (!Array.isArray(state.steps)) state.steps = [];
    stepsEl.textContent = "";
    state.steps.forEach(function (step, index) {
      var type = stepType(step);
      var n = index + 1;
      var label = "Step " + n;
      var select = el("select", { "aria-label": label + ": what it does", "data-b-step-type": "" });
      STEP_TYPES.forEach(function (t) { select.append(el("option", { value: t[0], text: t[1] })); });
      select.value = type;
      select.addEventListener("change", function () {
        state.steps[index] = fresh(select.value);
        renderSteps();
        writeBox();
        stepsEl.children[index].querySelector("[data-b-step-type]").focus();
      });
      var up = el("button", { type: "button", class: "btn icon", "data-b-up": "", "aria-label": "Move step " + n + " up", title: "Move up", disabled: index === 0 }, "↑");
      var down = el("button", { type: "button", class: "btn icon", "data-b-down": "", "aria-label": "Move step " + n + " down", title: "Move down", disabled: index === state.steps.length - 1 }, "↓");
      var remove = el("button", { type: "button", class: "btn icon", "data-b-remove": "", "aria-label": "Remove step " + n, title: "Remove" }, "✕");
      up.addEventListener("click", function () { move(index, -1); });
      down.addEventListener("click", function () { move(index, 1); });
      remove.addEventListener("click", function () {
        state.steps.splice(index, 1);
        renderSteps();
        writeBox();
        var next = stepsEl.children[Math.min(index, stepsEl.children.length - 1)];
        (next ? next.querySelector("[data-b-step-type]") : root.querySelector("[data-b-add]")).focus();
      });
      stepsEl.append(el("li", { "data-b-step": index },
        el("span", { class: "b-n", "aria-hidden": "true", text: n + "." }),
        select, valueInput(step, type, index, label),
        el("span", { class: "b-moves" }, up, down, remove)));
    });
  }

  function render() {
    var known = state && FIELDS[state.kind];
    fieldsEl.hidden = !known;
    noteEl.hidden = !!known;
    if (!known) {
      stepsWrap.hidden = true;
      noteEl.textContent = state
        ? "This strategy is not in our format (Argo Rollouts' or a CodeDeploy name): the form " +
          "cannot show it, the JSON below is checked and deployed as it is. Pick a kind to start anew."
        : "The JSON below does not parse yet: fix it, or pick a kind to start anew.";
      kindSelect.value = "";
      return;
    }
    kindSelect.value = state.kind;
    renderFields();
    renderSteps();
  }

  function example(kind) {
    var copy = JSON.parse(JSON.stringify(config.examples[kind]));
    if (kind === "canary" && config.templates.length) {
      copy.steps.splice(2, 0, { analysis: { template: config.templates[0] } });
    }
    return copy;
  }

  kindSelect.addEventListener("change", function () {
    if (!kindSelect.value) return;
    // a kind's fields differ: start from its example (the JSON box's undo, Ctrl+Z, still works)
    state = example(kindSelect.value);
    render();
    writeBox();
  });
  root.querySelector("[data-b-example]").addEventListener("click", function () {
    state = example(kindSelect.value || "canary");
    render();
    writeBox();
  });
  root.querySelector("[data-b-add]").addEventListener("click", function () {
    var steps = state.steps || (state.steps = []);
    var last = steps[steps.length - 1];
    steps.push(fresh(stepType(last) === "set_weight" ? "pause" : "set_weight"));
    renderSteps();
    writeBox();
    stepsEl.lastElementChild.querySelector("[data-b-step-value]").focus();
  });
  box.addEventListener("input", function () {
    state = parseBox();
    render();
    scheduleCheck();
  });

  // --- live check, by the API's validator ---------------------------------------------------

  var timer = null, asked = 0;

  function scheduleCheck() {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  }

  function showErrors(errors, message) {
    checkEl.className = "b-check errors";
    checkEl.textContent = "";
    checkEl.append(el("p", { text: message || "The strategy is invalid:" }));
    var list = el("ul");
    (errors || []).forEach(function (e) {
      list.append(el("li", null, el("code", { class: "path", text: e.path || "(the whole strategy)" }), " " + e.message));
      var m = /^steps\[(\d+)\]/.exec(e.path || "");
      var row = m && stepsEl.children[Number(m[1])];
      if (row) row.classList.add("b-invalid");
    });
    checkEl.append(list);
    box.setAttribute("aria-invalid", "true");
  }

  function check() {
    var mine = ++asked;
    stepsEl.querySelectorAll(".b-invalid").forEach(function (row) { row.classList.remove("b-invalid"); });
    var strategy = parseBox();
    if (box.value.trim() === "") {
      checkEl.className = "b-check";
      checkEl.textContent = "Empty: the default strategy (" + config.source + ") is used.";
      return;
    }
    if (!strategy) {
      showErrors([{ path: "", message: "is not valid JSON" }], "The strategy does not parse:");
      return;
    }
    checkEl.setAttribute("aria-busy", "true");
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]");
    fetch(config.validate_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
      body: JSON.stringify({ strategy: strategy, provider: config.provider || null })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (answer) {
      if (mine !== asked) return; // a later change is being checked
      checkEl.removeAttribute("aria-busy");
      if (!answer.ok) {
        var details = answer.body.details || {};
        showErrors(details.errors && details.errors.length ? details.errors : [{ path: "", message: answer.body.message }]);
        return;
      }
      box.removeAttribute("aria-invalid");
      var steps = answer.body.steps;
      checkEl.className = "b-check ok";
      checkEl.textContent = "";
      checkEl.append(
        el("p", null, el("b", { text: "Valid" }), ": a " + String(answer.body.strategy.kind).replace(/_/g, "-") +
          " deployment in " + steps.length + " step" + (steps.length === 1 ? "" : "s") + "."),
        el.apply(null, ["ol", { class: "steps", "data-b-planned": "" }].concat(steps.map(function (s) {
          return el("li", { text: s });
        })))
      );
    }).catch(function () {
      if (mine !== asked) return;
      checkEl.removeAttribute("aria-busy");
      checkEl.className = "b-check";
      checkEl.textContent = "Could not reach the server to check it; Check the strategy below still works.";
    });
  }

  state = parseBox();
  root.hidden = false;
  render();
  if (box.value.trim()) check();
})();
