/* A flag's page: evaluations per minute, one line per variant (on/off for a boolean flag), for
 * each environment it was evaluated in over the last 24 hours. The figures come with the page
 * (flags.web.evaluation_chart, as JSON in #flag-evaluations): the counts SDKs report to
 * /api/client/metrics and those of the OFREP evaluations served here. */
(function () {
  "use strict";
  var data = document.getElementById("flag-evaluations");
  if (!data || !window.Switchyard || !window.Switchyard.chart) return;
  var chart = JSON.parse(data.textContent);
  chart.environments.forEach(function (env) {
    var figure = document.querySelector('[data-flag-chart="' + env.environment + '"]');
    if (!figure) return;
    var series = {};
    env.series.forEach(function (s) { series[s.css] = s.points; });
    var drawn = window.Switchyard.chart(figure.querySelector(".chart-area"), {
      window: Math.max(600, chart.now - chart.start),
      gap: 90,
      label: "Evaluations per minute in " + env.environment,
      format: function (v) { return v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k" : String(Math.round(v)); }
    });
    drawn.draw(series, chart.now, { start: chart.start });
  });
})();
