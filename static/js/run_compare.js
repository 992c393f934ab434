/* Compare runs (templates/training/run_compare.html): one chart per metric family, one line per run
 * and metric, on the step axis. The families are the run page's (training/views.py METRIC_GROUPS). */
(function () {
  "use strict";

  var root = document.getElementById("run-compare");
  var source = document.getElementById("compare-data");
  if (!root || !source || !window.Chart) return;
  var data = JSON.parse(source.textContent);
  var COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

  function themeColor(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }
  function formatTick(value) {
    if (value === 0) return "0";
    var abs = Math.abs(value);
    if (abs >= 1e5 || abs < 1e-3) return value.toExponential(1).replace("e+", "e");
    return String(Number(value.toPrecision(3)));
  }

  window.Chart.defaults.color = themeColor("--muted", "#5b6475");
  var grid = themeColor("--line", "#eef0f3");
  data.charts.forEach(function (chart) {
    var datasets = [];
    // A run keeps its colour on every chart; a metric keeps its dash within a chart.
    data.runs.forEach(function (run, r) {
      chart.metrics.forEach(function (metric, m) {
        var points = run.series[metric];
        if (!points || !points.length) return;
        datasets.push({
          label: run.label + " · " + metric,
          data: points.map(function (p) { return { x: p[0], y: p[1] }; }),
          borderColor: COLORS[r % COLORS.length], backgroundColor: COLORS[r % COLORS.length],
          borderDash: DASHES[m % DASHES.length],
        });
      });
    });
    new window.Chart(document.getElementById("compare-" + chart.id), {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 }, grid: { color: grid } },
          y: { grid: { color: grid }, ticks: { callback: formatTick } }
        },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10 } } },
        elements: { point: { radius: 0, hoverRadius: 4 }, line: { borderWidth: 2, tension: 0.15 } }
      }
    });
  });
  root.dataset.ready = "true";
})();
