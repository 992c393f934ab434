/* Generation job page: poll /api/generation-jobs/{id}/ every 2 s while the job is active and update
   the status, progress bar, counts, log tail and error in place. The cancel button posts to the API. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var ACTIVE = ["queued", "running", "cancelling"];
  var LABELS = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelling: "Cancelling", cancelled: "Cancelled" };
  var root = document.getElementById("job");
  if (!root) return;

  function $(role) { return root.querySelector("[data-role=" + role + "]"); }
  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function render(job) {
    var active = ACTIVE.indexOf(job.status) !== -1;
    var percent = Math.round(1000 * Math.min(1, Math.max(0, job.progress || 0))) / 10;
    root.dataset.active = active ? "true" : "false";
    root.dataset.status = job.status;
    var badge = $("status");
    badge.className = "run-status run-status--" + job.status;
    badge.textContent = LABELS[job.status] || job.status;
    var bar = $("progress");
    bar.className = "run-progress run-progress--" + job.status + (active ? " run-progress--active" : "");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = percent + "%";
    $("percent").textContent = Math.round(percent) + "%";
    $("step").textContent = job.step;
    $("total").textContent = job.total_steps;
    $("tasks").textContent = job.tasks_created;
    $("responses").textContent = job.responses_created;
    $("skipped").textContent = job.prompts_skipped;
    var line = $("tasks-line");
    if (line) line.textContent = line.textContent.replace(/^\d+/, String(job.tasks_created));
    if (job.error) { $("error").textContent = job.error; $("error-card").hidden = false; }
    var log = $("log");
    if (job.log_tail && log.textContent !== job.log_tail) { log.textContent = job.log_tail; log.scrollTop = log.scrollHeight; }
    var cancel = $("cancel");
    if (cancel) cancel.hidden = !active || job.status === "cancelling";
  }

  function poll() {
    fetch(root.dataset.api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (job) render(job);
        if (!job || ACTIVE.indexOf(job.status) !== -1) window.setTimeout(poll, POLL_MS);
      })
      .catch(function () { window.setTimeout(poll, POLL_MS); });
  }

  var cancel = $("cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      if (!window.confirm("Cancel this job? The sampler stops and no tasks are made.")) return;
      cancel.disabled = true;
      fetch(root.dataset.api + "cancel/", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          cancel.disabled = false;
          if (!response.ok) { window.alert(body.detail || "The job could not be cancelled."); return; }
          if (body.status) render(body);
        });
      }).catch(function () { cancel.disabled = false; });
    });
  }

  var log = $("log");
  log.scrollTop = log.scrollHeight;
  if (root.dataset.active === "true") window.setTimeout(poll, POLL_MS);
})();
