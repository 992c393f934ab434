/* Shared by the pages that follow training runs and generation jobs: which statuses are still
   active, the status badge and progress bar of one run or job, and the CSRF token for cancel. */
(function () {
  "use strict";
  var ACTIVE = ["queued", "running", "cancelling"];
  var LABELS = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelling: "Cancelling", cancelled: "Cancelled" };

  function isActive(status) { return ACTIVE.indexOf(status) !== -1; }

  /* Paint the [data-role=status] badge and [data-role=progress] bar under `scope`; return the percent done. */
  function paint(scope, item) {
    var active = isActive(item.status);
    var percent = Math.round(1000 * Math.min(1, Math.max(0, item.progress || 0))) / 10;
    var badge = scope.querySelector("[data-role=status]");
    badge.className = "run-status run-status--" + item.status;
    badge.textContent = LABELS[item.status] || item.status;
    var bar = scope.querySelector("[data-role=progress]");
    bar.className = "run-progress run-progress--" + item.status + (active ? " run-progress--active" : "");
    // A native <progress>: its value attribute is written as the server renders it (one decimal),
    // so a bar reads the same whether the page drew it or polling repainted it.
    bar.setAttribute("value", percent.toFixed(1));
    bar.textContent = percent + "%";
    return percent;
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  window.JobStatus = { isActive: isActive, paint: paint, csrfToken: csrfToken };
})();
