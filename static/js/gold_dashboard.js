/* Dashboard: each labeler's gold accuracy with its 95% interval (vendored Chart.js), from #gold-data. */
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("gold-data");
    var canvas = document.getElementById("gold-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (!data.names.length) return;
    var css = getComputedStyle(document.documentElement);
    var accent = css.getPropertyValue("--accent").trim() || "#2f6fed";
    var good = css.getPropertyValue("--good").trim() || "#1a9e5a";
    var datasets = [
      {
        type: "bar",
        label: "95% interval",
        data: data.intervals,
        backgroundColor: accent + "33",
        borderColor: accent,
        borderWidth: 1,
        borderSkipped: false,
        barPercentage: 0.5,
      },
      {
        type: "line",
        label: "Accuracy",
        data: data.accuracy,
        showLine: false,
        pointRadius: 5,
        pointStyle: "rectRot",
        borderColor: good,
        backgroundColor: good,
      },
    ];
    new Chart(canvas, {
      data: { labels: data.names, datasets: datasets },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        scales: {
          x: {
            min: 0, max: 100,
            ticks: { callback: function (v) { return v + "%"; } },
          },
          y: { grid: { display: false } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                var v = item.raw;
                return Array.isArray(v) ? "95% interval: " + v[0] + "% – " + v[1] + "%" : "Accuracy: " + v + "%";
              },
            },
          },
          subtitle: {
            display: data.min_accuracy !== null,
            text: data.min_accuracy !== null ? "Qualification needs " + data.min_accuracy + "%" : "",
          },
        },
      },
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
