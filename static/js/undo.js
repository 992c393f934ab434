/* Undo the labeler's last submit (templates/annotation/_undo_bar.html).
 *
 * The button, or Ctrl+Z / Cmd+Z outside a text field, posts to the undo API. The answer names the
 * work page of the task and carries the undone work as a draft: it goes where the labeling page
 * keeps drafts (localStorage, by task id), so the task opens with the previous answer filled in.
 */
(function () {
  "use strict";

  var bar = document.getElementById("undo-bar");
  if (!bar) return;
  var button = document.getElementById("undo-btn");
  var errorBox = document.getElementById("undo-error");
  var busy = false;

  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.isContentEditable ||
      (el.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(el.type)));
  }

  function fail(message) {
    busy = false;
    button.disabled = false;
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function undo() {
    if (busy) return;
    busy = true;
    button.disabled = true;
    fetch(bar.dataset.undoUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": bar.dataset.csrfToken, "Accept": "application/json" },
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { fail((data && data.detail) || "The submit could not be undone."); return; }
        try {
          if (data.draft && Object.keys(data.draft).length) {
            window.localStorage.setItem("feedbackloop:draft:" + data.task_id, JSON.stringify(data.draft));
          }
        } catch (e) { /* private mode: the task still reopens, without the answer filled in */ }
        window.location.assign(data.label_url);
      });
    }).catch(function () { fail("Network error: nothing changed. Try again."); });
  }

  button.addEventListener("click", undo);
  document.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && (e.key === "z" || e.key === "Z") && !isTyping(e.target)) {
      e.preventDefault();
      undo();
    }
  });

  // The offer ends when its time does.
  var left = Number(bar.dataset.secondsLeft || 0);
  if (left > 0) setTimeout(function () { bar.hidden = true; }, left * 1000);
})();
