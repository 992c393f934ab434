/* Evaluation and leaderboard pages. Draws the leaderboard chart (vendored Chart.js) and, on an
   evaluation page, polls /api/evaluations/{id}/ (and the project's leaderboard) every 3 s, so the win
   rate, its 95% interval, the counts and the ranking follow the labelers' work without a reload. */
(function () {
  "use strict";
  var POLL_MS = 3000;
  var STATUS = { generating: ["queued", "Generating"], labeling: ["running", "Labeling"], complete: ["succeeded", "Complete"],
                 failed: ["failed", "Failed"], cancelled: ["cancelled", "Cancelled"] };
  var JOB_ACTIVE = ["queued", "running", "cancelling"];
  var root = document.getElementById("evaluation");
  if (!root) return;
  var chart = null;

  function $(role) { return root.querySelector("[data-role=" + role + "]"); }
  function pct(x) { return (Math.round(1000 * x) / 10).toFixed(1); }
  function text(role, value) { var el = $(role); if (el) el.textContent = value; }

  // Grid and tick colours from the page's palette, so the charts follow the light or dark scheme.
  function themeColor(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  function drawBoard(rows) {
    var rated = rows.filter(function (r) { return r.rating !== null; });
    var canvas = document.getElementById("board-chart");
    if (!canvas || !window.Chart) return;
    // No rated model yet: no chart at all rather than an empty axis (shown again when one is rated).
    canvas.closest("figure").hidden = !rated.length;
    if (!rated.length && !chart) return;
    var labels = rated.map(function (r) { return r.model.name; });
    var values = rated.map(function (r) { return r.rating; });
    // Each model's 95% bootstrap interval as a floating bar, its rating as a dot on it.
    var spans = rated.map(function (r) { return r.rating_low !== null && r.rating_low !== undefined ? [r.rating_low, r.rating_high] : [r.rating, r.rating]; });
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets[0].data = spans;
      chart.data.datasets[1].data = values;
      chart.update("none");
      return;
    }
    window.Chart.defaults.color = themeColor("--muted", "#5b6475");
    chart = new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [
        { type: "bar", label: "95% interval", data: spans, backgroundColor: "rgba(47, 111, 237, 0.25)", borderRadius: 4, barPercentage: 0.5 },
        { type: "line", label: "Rating", data: values, showLine: false, pointRadius: 5, pointBackgroundColor: "#2f6fed", borderColor: "#2f6fed" }
      ] },
      options: {
        indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
        // Not from zero: ratings sit near 1000, and 958 against 1042 must look apart.
        scales: { x: { beginAtZero: false, title: { display: true, text: "Bradley–Terry rating (Elo scale)" }, grid: { color: themeColor("--line", "#eef0f3") } }, y: { grid: { display: false } } },
        plugins: { legend: { display: false } }
      }
    });
  }

  function renderBoard(rows) {
    var body = root.querySelector("[data-role=board] tbody");
    if (!body) return;
    var fresh = document.createElement("tbody");
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.modelId = r.model.id;
      var cells = [
        [r.rank === null ? "—" : String(r.rank), "rank"],
        [null, ""],
        [r.rating === null ? "—" : String(Math.round(r.rating)), "num mono"],
        [r.rating_low === null || r.rating_low === undefined ? "—" : Math.round(r.rating_low) + "–" + Math.round(r.rating_high), "num mono muted"],
        [String(r.comparisons), "num"],
        [r.wins + " / " + r.losses + " / " + r.ties, "num mono"]
      ];
      cells.forEach(function (cell, i) {
        var td = document.createElement("td");
        td.className = cell[1];
        if (i === 1) {  // the model's name and kind
          var a = document.createElement("a");
          a.href = "/training/models/" + r.model.id + "/";  // the model's page, as the server links it
          a.textContent = r.model.name;
          var tag = document.createElement("span");
          tag.className = "kind-tag kind-tag--" + r.model.kind;
          tag.textContent = r.model.kind;
          td.appendChild(a); td.appendChild(document.createTextNode(" ")); td.appendChild(tag);
        } else td.textContent = cell[0];
        tr.appendChild(td);
      });
      fresh.appendChild(tr);
    });
    if (rows.length) body.replaceWith(fresh);
    drawBoard(rows);
  }

  function renderResults(body) {
    var r = body.results;
    // Stated for model B, the challenger.
    var judged = r.n > 0 && r.challenger_win_rate !== null;
    text("win-rate", judged ? pct(r.challenger_win_rate) + "%" : "—");
    text("ci", judged ? "95% CI " + pct(r.challenger_ci_low) + "% – " + pct(r.challenger_ci_high) + "%" : "No judgements yet");
    var band = $("ci-band"), dot = $("ci-dot");
    if (band && dot) {
      band.toggleAttribute("hidden", !judged);  // SVG elements have no .hidden property
      dot.toggleAttribute("hidden", !judged);
      if (judged) {
        band.setAttribute("x", pct(r.challenger_ci_low) + "%");
        band.setAttribute("width", pct(r.challenger_ci_high - r.challenger_ci_low) + "%");
        dot.setAttribute("x", pct(r.challenger_win_rate) + "%");
      }
    }
    text("wins", r.wins); text("losses", r.losses); text("ties", r.ties); text("n", r.n);
    text("tasks-done", r.tasks_done); text("tasks", r.tasks);
    var badge = $("eval-status"), s = STATUS[r.status];
    if (badge && s) { badge.className = "run-status run-status--" + s[0]; badge.textContent = s[1]; }
    var card = $("job-card");
    if (card) {
      var active = JOB_ACTIVE.indexOf(r.job_status) !== -1;
      card.hidden = !active;
      if (!active && r.job_status === "failed") { var err = $("job-error"); if (err) err.hidden = false; }
    }
  }

  function pollJob() {
    var card = $("job-card");
    if (!root.dataset.jobApi || !card || card.hidden) return;
    fetch(root.dataset.jobApi, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) return;
        text("job-step", job.step);
        var bar = $("progress");
        var percent = Math.round(1000 * (job.progress || 0)) / 10;
        bar.setAttribute("value", percent.toFixed(1));  // one decimal, as the server draws it
      })
      .catch(function () {});
  }

  function poll() {
    var board = document.getElementById("leaderboard");
    var requests = [];
    if (root.dataset.api) {
      requests.push(fetch(root.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) { if (body) renderResults(body); }));
    }
    if (board && board.dataset.api) {
      requests.push(fetch(board.dataset.api, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) { if (body) renderBoard(body.models); }));
    }
    pollJob();
    Promise.all(requests).catch(function () {}).then(function () { window.setTimeout(poll, POLL_MS); });
  }

  var data = document.getElementById("board-data");
  drawBoard(data ? JSON.parse(data.textContent) : []);
  if (root.dataset.api) window.setTimeout(poll, POLL_MS);
})();
