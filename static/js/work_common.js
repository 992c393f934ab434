/* What the work page (labeling.js) and the review page (review.js) share: a client id per page load
 * for idempotent submits, the CSRF token, JSON posts that never throw on a non-JSON answer, and
 * "is the user typing" for the keyboard shortcuts. Loaded before either page's own script. */
(function () {
  "use strict";

  function newUuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    // Plain-http deployments are not a secure context: build a v4 UUID from getRandomValues.
    var b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function csrfToken(fallback) {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : fallback;
  }

  // Resolves to {status, ok, data}; data is null when the answer is empty or not JSON.
  function postJson(url, body, csrfFallback) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken(csrfFallback) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return { status: resp.status, ok: resp.ok, data: data };
      });
    });
  }

  function isTyping(el) {
    if (!el) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    if (el.tagName === "INPUT") return ["checkbox", "radio", "button", "submit", "reset"].indexOf(el.type) === -1;
    return false;
  }

  window.FeedbackLoopWork = { newUuid: newUuid, csrfToken: csrfToken, postJson: postJson, isTyping: isTyping };
})();
