/* Generation job page: poll /api/generation-jobs/{id}/ every 2 s while the job is active and update
   the status, progress bar, counts, log tail and error in place. The cancel button posts to the API. */
(function () {
  "use strict";
  var POLL_MS = 2000;
  var root = document.getElementById("job");
  if (!root) return;

  function $(role) { return root.querySelector("[data-role=" + role + "]"); }

  function render(job) {
    var active = JobStatus.isActive(job.status);
    var percent = JobStatus.paint(root, job);
    root.dataset.active = active ? "true" : "false";
    root.dataset.status = job.status;
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
        if (!job || JobStatus.isActive(job.status)) window.setTimeout(poll, POLL_MS);
      })
      .catch(function () { window.setTimeout(poll, POLL_MS); });
  }

  var cancel = $("cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      if (!window.confirm("Cancel this job? The sampler stops and no tasks are made.")) return;
      cancel.disabled = true;
      fetch(root.dataset.api + "cancel/", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": JobStatus.csrfToken(), Accept: "application/json" }
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
