/* Project admin pages: dashboard charts (vendored Chart.js), label quality, role auto-submit, confirm prompts. */
(function () {
  "use strict";

  var css = getComputedStyle(document.documentElement);
  function color(name, fallback) {
    var value = css.getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawCharts() {
    var source = document.getElementById("dashboard-data");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var accent = color("--accent", "#2f6fed");
    var good = color("--good", "#1a9e5a");
    var muted = color("--muted", "#667085");
    var line = color("--line", "#dde1e7");

    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = muted;
    Chart.defaults.borderColor = line;
    Chart.defaults.plugins.legend.labels.boxWidth = 12;

    var timeline = document.getElementById("timeline-chart");
    if (timeline && data.timeline.labels.length) {
      // Bars, stacked: one bucket of work is one readable bar, not a lone dot, and a year of weeks still reads.
      new Chart(timeline, {
        type: "bar",
        data: {
          labels: data.timeline.labels,
          datasets: [
            { label: "Annotations", data: data.timeline.annotations, backgroundColor: accent, borderRadius: 2,
              maxBarThickness: 48 },
            { label: "Skips", data: data.timeline.skips, backgroundColor: "#d08a3a", borderRadius: 2, maxBarThickness: 48 },
          ],
        },
        options: {
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
            x: { stacked: true, grid: { display: false }, ticks: { maxTicksLimit: 12, autoSkip: true },
                 title: { display: true, text: "per " + data.timeline.unit + " (UTC)" } },
          },
        },
      });
    }

    var labelers = document.getElementById("labelers-chart");
    if (labelers && data.labelers.names.length) {
      new Chart(labelers, {
        type: "bar",
        data: {
          labels: data.labelers.names,
          datasets: [
            { label: "Annotations", data: data.labelers.annotations, backgroundColor: good, borderRadius: 3 },
            { label: "Skips", data: data.labelers.skips, backgroundColor: "#f0b46b", borderRadius: 3 },
          ],
        },
        options: {
          indexAxis: "y",
          maintainAspectRatio: false,
          scales: {
            x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
            y: { stacked: true, grid: { display: false } },
          },
        },
      });
    }

    var agreement = document.getElementById("reward-agreement-chart");
    var rm = data.reward_agreement;
    if (agreement && rm && rm.labels.length) {
      new Chart(agreement, {
        type: "line",
        data: {
          labels: rm.labels,
          datasets: [
            {
              label: "Top choice agrees (%)",
              data: rm.top_percent,
              borderColor: accent,
              backgroundColor: accent,
              spanGaps: true,
              pointRadius: rm.labels.length > 48 ? 0 : 3,
            },
            {
              label: "Pairs agree (%)",
              data: rm.pairs_percent,
              borderColor: good,
              backgroundColor: good,
              borderDash: [4, 3],
              spanGaps: true,
              pointRadius: rm.labels.length > 48 ? 0 : 3,
            },
          ],
        },
        options: {
          maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            y: { min: 0, max: 100, ticks: { callback: function (v) { return v + "%"; } } },
            x: { grid: { display: false }, ticks: { maxTicksLimit: 12, autoSkip: true } },
          },
        },
      });
    }
  }

  function drawQuality() {
    var source = document.getElementById("quality-data");
    var canvas = document.getElementById("quality-competence-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (!data.labelers.length) return;
    var accent = color("--accent", "#2f6fed");
    var warn = color("--warn", "#b7791f");
    var muted = color("--muted", "#667085");
    canvas.parentElement.classList.toggle("tall", data.labelers.length > 8);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labelers,
        datasets: [
          {
            label: "Dawid-Skene",
            data: data.dawid_skene,
            // A flagged labeler's bar stands out.
            backgroundColor: data.flagged.map(function (f) { return f ? warn : accent; }),
            borderRadius: 3,
          },
          { label: "MACE", data: data.mace, backgroundColor: muted + "66", borderRadius: 3 },
        ],
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        scales: {
          x: { min: 0, max: 1, ticks: { stepSize: 0.2 } },
          y: { grid: { display: false } },
        },
        plugins: {
          tooltip: {
            callbacks: {
              label: function (item) {
                var value = item.raw === null ? "–" : item.raw.toFixed(2);
                var flagged = item.datasetIndex === 0 && data.flagged[item.dataIndex] ? " (flagged)" : "";
                return item.dataset.label + ": " + value + flagged;
              },
            },
          },
        },
      },
    });
  }

  function wireForms() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        select.form.submit();
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  function start() {
    wireForms();
    drawCharts();
    drawQuality();
  }

  // The dashboard refreshes itself every minute while the tab is visible: the page is fetched again
  // and its content swapped in place (its numbers come from cached reports, so this costs little).
  var REFRESH_MS = 60000;
  function refresh() {
    if (document.hidden || !document.getElementById("dashboard-data")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("content");
        var current = document.getElementById("content");
        if (!fresh || !current || !fresh.querySelector("#dashboard-data")) return;
        if (window.Chart && window.Chart.instances) {
          Object.keys(window.Chart.instances).forEach(function (key) { window.Chart.instances[key].destroy(); });
        }
        current.replaceChildren.apply(current, Array.prototype.slice.call(fresh.childNodes));
        current.dataset.refreshedAt = new Date().toISOString();
        start();
      })
      .catch(function () { /* offline: the next minute tries again */ });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  if (document.getElementById("dashboard-data")) window.setInterval(refresh, REFRESH_MS);
  window.FeedbackLoopDashboard = { refresh: refresh };
})();
