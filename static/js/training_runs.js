/* Runs list: every 2 s, refresh the rows of active runs from /api/training-runs/{id}/ in place,
   and name a run's output model once it has one. */
(function () {
  "use strict";
  var POLL_MS = 2000;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function formatTime(iso) {  // as the page renders it: "Nov 26, 22:52" (UTC)
    if (!iso) return "—";
    var d = new Date(iso);
    return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate() + ", " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function formatDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s = s % 60;
    if (h) return h + "h " + pad(m) + "m";
    if (m) return m + "m " + pad(s) + "s";
    return s + "s";
  }

  function render(row, run) {
    var active = JobStatus.isActive(run.status);
    var percent = JobStatus.paint(row, run);
    // Before it trains, the worker freezes the run's dataset snapshot (the run page shows its rows).
    row.querySelector("[data-role=steps]").textContent = run.phase === "freezing" ? "freezing the dataset" :
      run.step + " / " + (run.total_steps || "?");
    row.querySelector("[data-role=percent]").textContent = run.total_steps ? "· " + Math.round(percent) + "%" : "";
    row.querySelector("[data-role=started]").textContent = formatTime(run.started_at);
    row.querySelector("[data-role=finished]").textContent = formatTime(run.finished_at);
    if (run.started_at) {
      var end = run.finished_at ? new Date(run.finished_at) : new Date();
      row.querySelector("[data-role=duration]").textContent = formatDuration(end - new Date(run.started_at));
    }
    row.dataset.active = active ? "true" : "false";
    showOutputModel(row, run.output_model);
  }

  // The API names the output model by id: link it at once, then take its name from the list as the
  // server draws it now (the id link stays if that fails).
  function showOutputModel(row, modelId) {
    var cell = row.querySelector("[data-role=output-model]");
    if (!modelId || !cell || cell.querySelector("a")) return;
    var link = document.createElement("a");
    link.href = document.getElementById("runs").dataset.modelsUrl + modelId + "/";
    link.textContent = "Model version #" + modelId;
    cell.replaceChildren(link);
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html")
          .querySelector("#runs tr[data-run-id='" + row.dataset.runId + "'] [data-role=output-model]");
        if (fresh && fresh.querySelector("a")) cell.replaceChildren.apply(cell, Array.prototype.slice.call(fresh.childNodes));
      })
      .catch(function () { /* the id link stays */ });
  }

  function poll() {
    var rows = document.querySelectorAll("#runs tr[data-active=true]");
    if (!rows.length) return;
    var pending = Array.prototype.map.call(rows, function (row) {
      return fetch(row.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (run) { if (run) render(row, run); })
        .catch(function () { /* a missed tick is retried on the next one */ });
    });
    Promise.all(pending).then(function () { window.setTimeout(poll, POLL_MS); });
  }

  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  window.setTimeout(poll, POLL_MS);
})();
