/* A flag's page, live: /ws/flags/<key>/ sends the flag's state per environment after every
 * change (flags.live). Badges, the kill notice, the plan's state and the history follow it; when
 * what an environment serves changed, its section says so (its buttons are those of the state
 * the page was drawn in: a reload brings the current ones). */
(function () {
  "use strict";
  var head = document.querySelector("[data-flag-live]");
  if (!head || !window.Switchyard || !("WebSocket" in window)) return;
  var S = window.Switchyard;
  var key = head.dataset.flagLive;
  var drawn = {};

  function badge(env) {
    var span = document.createElement("span");
    if (env.killed) { span.className = "badge state-failed"; span.textContent = "killed"; }
    else if (env.enabled) { span.className = "badge state-succeeded"; span.textContent = "on"; }
    else { span.className = "badge"; span.textContent = "off"; }
    return span;
  }

  function apply(data) {
    data.environments.forEach(function (env) {
      var section = document.querySelector('section.flag-env[data-environment="' + env.environment + '"]');
      if (!section) return;
      var state = section.querySelector("[data-flag-state]");
      if (state) state.replaceChildren(badge(env));
      var now = [env.enabled, env.killed, env.version].join("/");
      if (drawn[env.environment] === undefined) drawn[env.environment] = now;
      var stale = section.querySelector("[data-flag-stale]");
      if (stale) stale.hidden = drawn[env.environment] === now;
      var plan = section.querySelector("[data-plan-state]");
      if (plan && env.plan) {
        plan.dataset.planState = env.plan.state;
        var b = plan.querySelector(".badge");
        if (b) b.textContent = env.plan.state;
      }
    });
    var list = document.querySelector("ul.history");
    if (list && data.history) {
      list.replaceChildren.apply(list, data.history.map(function (h) {
        var li = document.createElement("li");
        var time = document.createElement("time");
        time.dateTime = h.at;
        time.textContent = h.at.replace("T", " ").slice(0, 19);
        var strong = document.createElement("strong");
        strong.textContent = h.action;
        li.append(time, " · " + h.actor + " · ", strong, " " + h.object);
        return li;
      }));
    }
  }

  S.live(function () { return "/ws/flags/" + encodeURIComponent(key) + "/"; }, function (message) {
    if (message.type === "flag") apply(message.data);
  });
})();
