/* Run page: poll /api/training-runs/{id}/ every 2 s while the run is active and update the
   status, progress bar, charts (in place, with the vendored Chart.js), log tail, error and lineage. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var COLORS = ["#2f6fed", "#d0453a", "#1a9e5a", "#b7791f", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  // The same grouping as training.views.METRIC_GROUPS: one family per chart, each on its own axis.
  var GROUPS = [
    ["loss", function (n) { return n.indexOf("loss") !== -1; }],
    ["margin", function (n) { return n.indexOf("margin") !== -1; }],
    ["reward", function (n) { return /reward|accuracy|win/.test(n); }],
    ["kl", function (n) { return n === "kl" || /^kl[/_]|[/_]kl$/.test(n); }],
    ["entropy", function (n) { return n.indexOf("entropy") !== -1; }]
  ];

  // Ticks a person can read: 0.00012 and 1.2e-8, never 6.000000000E-9.
  function formatTick(value) {
    if (value === 0) return "0";
    var abs = Math.abs(value);
    if (abs >= 1e5 || abs < 1e-3) return value.toExponential(1).replace("e+", "e");
    return String(Number(value.toPrecision(3)));
  }

  var root = document.getElementById("run");
  if (!root) return;
  var charts = {};

  function $(role) { return root.querySelector("[data-role=" + role + "]"); }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function formatTime(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  function formatDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s = s % 60;
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(s) + "s";
    return s + "s";
  }
  function formatMetric(v) {
    if (typeof v !== "number") return String(v);
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  }

  function groupOf(name) {
    var n = name.toLowerCase();
    if (n.indexOf("learning_rate") !== -1 || /lr$/.test(n)) return null;
    for (var i = 0; i < GROUPS.length; i++) if (GROUPS[i][1](n)) return GROUPS[i][0];
    return null;
  }

  // Grid and tick colours from the page's palette, so the charts follow the light or dark scheme.
  function themeColor(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  function chartFor(group) {
    if (charts[group]) return charts[group];
    var figure = root.querySelector("[data-chart=" + group + "]");
    figure.hidden = false;
    window.Chart.defaults.color = themeColor("--muted", "#5b6475");
    charts[group] = new window.Chart(document.getElementById("chart-" + group), {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "step" }, ticks: { precision: 0 }, grid: { color: themeColor("--line", "#eef0f3") } },
          y: { grid: { color: themeColor("--line", "#eef0f3") }, ticks: { callback: formatTick } }
        },
        // The legend names only the lines drawn, and only when there is more than one.
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10,
          filter: function (item, data) { return data.datasets.length > 1 && data.datasets[item.datasetIndex].data.length > 0; } } } },
        elements: { point: { radius: 0, hoverRadius: 4 }, line: { borderWidth: 2, tension: 0.15 } }
      }
    });
    return charts[group];
  }

  function updateCharts(metrics) {
    if (!window.Chart || !metrics) return;
    var names = Object.keys(metrics).sort(), drawn = false;
    names.forEach(function (name) {
      var group = groupOf(name);
      if (!group || !metrics[name].length) return;
      drawn = true;
      var chart = chartFor(group);
      var points = metrics[name].map(function (p) { return { x: p[0], y: p[1] }; });
      var dataset = chart.data.datasets.find(function (d) { return d.label === name; });
      if (dataset) {
        dataset.data = points;
      } else {
        var color = COLORS[chart.data.datasets.length % COLORS.length];
        chart.data.datasets.push({ label: name, data: points, borderColor: color, backgroundColor: color });
      }
    });
    Object.keys(charts).forEach(function (group) { charts[group].update("none"); });
    if (drawn) $("charts-empty").hidden = true;
  }

  function updateLatest(metrics) {
    var table = $("latest");
    var names = Object.keys(metrics || {}).sort().filter(function (n) { return metrics[n].length; });
    if (!names.length) return;
    var body = document.createElement("tbody");
    names.forEach(function (name) {
      var series = metrics[name], tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.textContent = name;
      td.className = "num mono";
      td.textContent = formatMetric(series[series.length - 1][1]);
      tr.appendChild(th); tr.appendChild(td); body.appendChild(tr);
    });
    table.replaceChildren(body);
  }

  function updateLog(text) {
    var log = $("log");
    if (text === undefined || text === null || log.textContent === text) return;
    log.textContent = text || "No output yet.";
    if ($("follow").checked) log.scrollTop = log.scrollHeight;
  }

  function outputModelId(run) {
    var m = run.output_model !== undefined ? run.output_model : run.output_model_id;
    if (m && typeof m === "object") return m.id;
    return m;
  }

  // Time left from the pace so far: the seconds since the run started over the steps done.
  function eta(run) {
    if (!run.started_at || !run.total_steps || !run.step || run.step >= run.total_steps) return "\u2014";
    var elapsed = new Date() - new Date(run.started_at);
    return "about " + formatDuration(elapsed / run.step * (run.total_steps - run.step));
  }

  // When the run ends: the tab's title says so, and a browser notification if the user asked for one.
  var baseTitle = document.title;
  var wasActive = root.dataset.active === "true";
  var ENDINGS = { succeeded: "\u2713 succeeded", failed: "\u2717 failed", cancelled: "cancelled" };
  function announceEnd(run) {
    var what = "Run #" + run.id + " " + (ENDINGS[run.status] || run.status);
    document.title = what + " \u00b7 " + baseTitle;
    if (window.Notification && window.Notification.permission === "granted") {
      try { new window.Notification(what, { body: root.dataset.runName || baseTitle, tag: "run-" + run.id }); } catch (e) { /* not allowed here */ }
    }
  }

  var notifyButton = $("notify");
  var notifyState = $("notify-state");
  function showNotifyChoice() {
    if (!notifyButton || !window.Notification || !wasActive) return;
    var permission = window.Notification.permission;
    notifyButton.hidden = permission !== "default";
    notifyState.textContent = permission === "granted" ? "You will get a notification when the run ends." :
      (permission === "denied" ? "Notifications are blocked for this site; the tab's title will say when it ends." : "");
  }
  if (notifyButton) {
    notifyButton.addEventListener("click", function () {
      window.Notification.requestPermission().then(showNotifyChoice);
    });
    showNotifyChoice();
  }

  // Before it trains, the worker freezes the run's dataset snapshot: rows written, of how many if known.
  function freezeProgress(run) {
    return run.frozen_rows_expected ? run.frozen_rows / run.frozen_rows_expected : 0;
  }
  function showFreezing(run, freezing) {
    $("freezing").hidden = !freezing;
    if (freezing) {
      $("frozen-rows").textContent = run.frozen_rows;
      $("frozen-expected").textContent = run.frozen_rows_expected !== null && run.frozen_rows_expected !== undefined ?
        " of " + run.frozen_rows_expected : "";
    }
    var snapshot = run.snapshot, shown = $("snapshot");
    if (snapshot && typeof snapshot === "object" && shown && shown.classList.contains("muted")) {
      shown.classList.remove("muted");
      shown.textContent = "#" + snapshot.id + " \u00b7 " + snapshot.format + " \u00b7 " + snapshot.row_count +
        " row" + (snapshot.row_count === 1 ? "" : "s");
    }
  }

  function render(run) {
    var active = JobStatus.isActive(run.status);
    $("eta").textContent = active ? eta(run) : "\u2014";
    if (wasActive && !active) announceEnd(run);
    wasActive = active;
    if (!active && notifyButton) { notifyButton.hidden = true; notifyState.textContent = ""; }
    var freezing = run.phase === "freezing";
    var percent = JobStatus.paint(root, freezing ? { status: run.status, progress: freezeProgress(run) } : run);
    root.dataset.active = active ? "true" : "false";
    root.dataset.status = run.status;
    root.dataset.phase = run.phase || run.status;
    showFreezing(run, freezing);
    $("percent").textContent = Math.round(percent) + "%";
    $("step").textContent = run.step;
    $("total").textContent = run.total_steps || "?";
    $("started").textContent = formatTime(run.started_at);
    $("finished").textContent = formatTime(run.finished_at);
    $("worker").textContent = run.worker || "\u2014";
    if (run.started_at) {
      var end = run.finished_at ? new Date(run.finished_at) : new Date();
      $("duration").textContent = formatDuration(end - new Date(run.started_at));
    }
    if (run.error) {
      $("error").textContent = run.error;
      $("error-card").hidden = false;
    }
    var cancel = $("cancel-form");
    if (cancel) cancel.hidden = !active || run.status === "cancelling";
    var again = run.status === "failed" || run.status === "cancelled";
    ["resume-form", "retry-form"].forEach(function (role) { var form = $(role); if (form) form.hidden = !again; });
    updateLog(run.log_tail);
    updateCharts(run.metrics);
    updateLatest(run.metrics);
    var modelId = outputModelId(run);
    if (modelId && !root.querySelector("[data-role=output-model] a")) {
      var link = document.createElement("a");
      link.href = root.dataset.modelsUrl + modelId + "/";
      link.textContent = "Model version #" + modelId;
      $("output-model").replaceChildren(link);
      refreshLineage();
    }
  }

  // The API names the output model by id; the page's own lineage card has its name and kind.
  function refreshLineage() {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector(".lineage");
        var current = root.querySelector(".lineage");
        if (fresh && current) current.replaceChildren.apply(current, Array.prototype.slice.call(fresh.childNodes));
      })
      .catch(function () { /* the id link stays */ });
  }

  function poll() {
    fetch(root.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (run) {
        if (run) render(run);
        if (!run || JobStatus.isActive(run.status)) window.setTimeout(poll, POLL_MS);
      })
      .catch(function () { window.setTimeout(poll, POLL_MS); });
  }

  var cancelForm = $("cancel-form");
  if (cancelForm) {
    cancelForm.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!window.confirm("Cancel this run? The worker stops the training process.")) return;
      var button = cancelForm.querySelector("button");
      button.disabled = true;
      fetch(root.dataset.api + "cancel/", {
        method: "POST", credentials: "same-origin",
        headers: { "X-CSRFToken": JobStatus.csrfToken(), Accept: "application/json" }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          button.disabled = false;
          if (!response.ok) { window.alert(body.detail || "The run could not be cancelled."); return; }
          if (body && body.status) render(body);  // polling goes on while the run is active
        });
      }).catch(function () { button.disabled = false; });
    });
  }

  var initial = JSON.parse(document.getElementById("run-metrics").textContent);
  updateCharts(initial);
  var log = $("log");
  log.scrollTop = log.scrollHeight;
  if (root.dataset.active === "true") window.setTimeout(poll, POLL_MS);
})();
