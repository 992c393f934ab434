/* FeedbackLoop review page: keyboard-first verdicts. Plain ES2017, no build step, no libraries.
 *
 * The server renders the annotation under review with its task, and leases it to the reviewer.
 * This script sends one verdict to the API, with one client_id per page load (so a retry or a
 * double press stores one verdict), then opens the next item by reloading the page.
 *   A accepts. R opens the comment box; Ctrl+Enter rejects. C opens the correction: the text of a
 *   demonstration, or a new judgement of a comparison (keys as on the work page); Ctrl+Enter (or
 *   Enter outside a text box) saves it. Esc leaves a text box, then closes the panel.
 */
(function () {
  "use strict";

  var app = document.getElementById("review-app");
  if (!app) return;
  var common = window.FeedbackLoopWork; // static/js/work_common.js
  var newUuid = common.newUuid, isTyping = common.isTyping;

  var data = JSON.parse(document.getElementById("review-data").textContent);
  var mode = app.dataset.mode; // demo | pair | rank
  var clientId = newUuid();
  var busy = false;
  var panel = null; // null | "reject" | "correct"

  var $ = function (id) { return document.getElementById(id); };
  var errorBox = $("form-error");
  var keyHint = $("key-hint");
  var responseCards = Array.prototype.slice.call(document.querySelectorAll(".response"));
  var state = { choice: null, strength: null, groups: [], allBad: !!data.annotation.all_bad };
  var history = [];
  var pendingTie = false;

  // ---------------------------------------------------------------- helpers

  function postJson(url, body) { return common.postJson(url, body, app.dataset.csrfToken); }

  var hintTimer = null;
  function showHint(text, sticky) {
    keyHint.textContent = text;
    keyHint.hidden = !text;
    clearTimeout(hintTimer);
    if (text && !sticky) hintTimer = setTimeout(function () { keyHint.hidden = true; }, 3500);
  }

  var FIELD_TARGETS = {
    comment: "reject-comment", "correction.text": "correct-text", "correction.ranking": "correct-panel",
    "correction.strength": "strength", correction: "correct-panel",
  };

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    Array.prototype.forEach.call(document.querySelectorAll(".invalid"), function (el) { el.classList.remove("invalid"); });
  }

  function showError(message, field) {
    errorBox.textContent = "";
    if (field) {
      var strong = document.createElement("strong");
      strong.textContent = field + ": ";
      errorBox.appendChild(strong);
    }
    errorBox.appendChild(document.createTextNode(message));
    errorBox.hidden = false;
    var target = field && FIELD_TARGETS[field] ? $(FIELD_TARGETS[field]) : null;
    if (target) target.classList.add("invalid");
  }

  function apiError(result) {
    var d = result.data || {};
    var message = d.detail || (result.status >= 500 ? "The server failed (" + result.status + ")." : "Request failed (" + result.status + ").");
    var field = d.field || null;
    if (!d.detail && typeof d === "object") {
      var keys = Object.keys(d);
      if (keys.length) { field = keys[0]; message = [].concat(d[keys[0]]).join(" "); }
    }
    return { message: message, field: field };
  }

  function normalised(text) { return text.split(/\s+/).filter(Boolean).join(" "); }
  function responseIds() { return responseCards.map(function (c) { return Number(c.dataset.responseId); }); }

  function ordinal(i) {
    var s = ["th", "st", "nd", "rd"], v = i % 100;
    return i + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  // ---------------------------------------------------------------- sending a verdict

  function setBusy(on) {
    busy = on;
    ["accept-btn", "reject-submit", "correct-submit"].forEach(function (id) {
      var b = $(id);
      b.disabled = on;
      b.classList.toggle("busy", on);
    });
  }

  function send(body) {
    if (busy) return;
    clearError();
    body.client_id = clientId;
    body.time_spent_ms = Math.max(0, Math.round(performance.now()));
    setBusy(true);
    postJson(app.dataset.verdictUrl, body).then(function (result) {
      if (result.status === 201 || result.status === 200) { window.location.replace(window.location.pathname); return; }
      setBusy(false);
      var err = apiError(result);
      showError(err.message, err.field);
    }).catch(function () {
      setBusy(false);
      showError("Network error: nothing was sent. Check your connection and try again.", null);
    });
  }

  function accept() { send({ verdict: "accepted" }); }

  function reject() {
    var comment = $("reject-comment").value;
    if (!comment.trim()) {
      showError("Say what is wrong: the labeler reads it.", "comment");
      $("reject-comment").focus();
      return;
    }
    send({ verdict: "rejected", comment: comment });
  }

  function correctionBody() {
    var comment = $("correct-comment").value;
    if (mode === "demo") {
      var text = $("correct-text").value;
      if (!text.trim()) return { error: { field: "correction.text", message: "Write the corrected demonstration." } };
      if (normalised(text) === normalised(data.annotation.text)) {
        return { error: { field: "correction.text", message: "The text is unchanged: edit it, or accept with A." } };
      }
      return { verdict: "corrected", comment: comment, correction: { text: text } };
    }
    var judgement = { flags: data.annotation.flags || {}, all_bad: state.allBad, rationale: data.annotation.rationale || "" };
    var ids = responseIds();
    if (mode === "pair") {
      if (!state.choice) {
        if (!state.allBad) return { error: { field: "correction.ranking", message: "Press 1 or 2 for the better response, or 3 for a tie." } };
        judgement.ranking = [];
      } else if (state.choice === "tie") {
        judgement.ranking = [[ids[0], ids[1]]];
      } else {
        if (!state.strength) return { error: { field: "correction.strength", message: "Say how much better: A, S or D." } };
        var win = Number(state.choice) - 1;
        judgement.ranking = [[ids[win]], [ids[1 - win]]];
        judgement.strength = state.strength;
      }
    } else {
      var ranked = rankedNumbers().length;
      if (ranked === 0 && state.allBad) {
        judgement.ranking = [];
      } else if (ranked < responseCards.length) {
        return { error: { field: "correction.ranking", message: "Rank every response: " + (responseCards.length - ranked) + " still unranked." } };
      } else {
        judgement.ranking = state.groups.map(function (g) { return g.map(function (n) { return ids[n - 1]; }); });
      }
    }
    return { verdict: "corrected", comment: comment, correction: judgement };
  }

  function saveCorrection() {
    if (panel !== "correct") return;
    clearError();
    var body = correctionBody();
    if (body.error) { showError(body.error.message, body.error.field); return; }
    send(body);
  }

  // ---------------------------------------------------------------- panels

  function openPanel(name) {
    panel = name;
    pendingTie = false;
    $("reject-panel").hidden = name !== "reject";
    $("correct-panel").hidden = name !== "correct";
    $("reject-open").setAttribute("aria-expanded", String(name === "reject"));
    $("correct-open").setAttribute("aria-expanded", String(name === "correct"));
    clearError();
    showHint("");
    if (name === "reject") {
      $("reject-comment").focus();
    } else if (name === "correct") {
      if (mode === "demo") {
        var box = $("correct-text");
        if (!box.value) box.value = data.annotation.text;
        box.focus();
        box.setSelectionRange(box.value.length, box.value.length);
      } else {
        if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
        $("correct-panel").scrollIntoView({ block: "nearest" });
        showHint(mode === "pair" ? "Correcting: 1, 2 or 3, then A, S or D; Enter saves." : "Correcting: press the numbers best first; Enter saves.", true);
      }
    } else if (document.activeElement && document.activeElement.blur) {
      document.activeElement.blur();
    }
  }

  // ---------------------------------------------------------------- the correction's judgement

  function rankedNumbers() { return [].concat.apply([], state.groups); }

  function setChoice(choice) {
    state.choice = choice;
    var strength = $("strength");
    strength.disabled = choice === "tie";
    if (choice === "tie") { state.strength = null; checkStrength(); }
    $("pair-choice").textContent = choice === "tie" ? "A tie." : "Response " + choice + " is better.";
    renderBadges();
  }

  function checkStrength() {
    Array.prototype.forEach.call(document.querySelectorAll("input[name=strength]"), function (r) { r.checked = r.value === state.strength; });
  }

  function setStrength(value) {
    if (!state.choice || state.choice === "tie") { showHint("Choose the better response first (1 or 2)."); return; }
    state.strength = value;
    checkStrength();
  }

  function rankAppend(n, tie) {
    if (rankedNumbers().indexOf(n) !== -1) { showHint("Response " + n + " is ranked already. Backspace undoes."); return; }
    history.push(JSON.stringify(state.groups));
    if (tie && state.groups.length) state.groups[state.groups.length - 1].push(n);
    else state.groups.push([n]);
    clearError();
    renderRanking();
  }

  function rankUndo() {
    if (!history.length) { showHint("Nothing to undo."); return; }
    state.groups = JSON.parse(history.pop());
    renderRanking();
  }

  function renderRanking() {
    var list = $("ranking-list");
    list.textContent = "";
    state.groups.forEach(function (group, i) {
      var li = document.createElement("li");
      li.className = "rank-group" + (group.length > 1 ? " is-tie" : "");
      var place = document.createElement("span");
      place.className = "place";
      place.textContent = ordinal(i + 1);
      li.appendChild(place);
      group.forEach(function (n, j) {
        if (j) {
          var eq = document.createElement("span");
          eq.className = "tie-sign";
          eq.textContent = "=";
          li.appendChild(eq);
        }
        var chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = "Response " + n;
        li.appendChild(chip);
      });
      list.appendChild(li);
    });
    if (!state.groups.length) {
      var empty = document.createElement("li");
      empty.className = "muted small";
      empty.textContent = "Nothing ranked yet.";
      list.appendChild(empty);
    }
    renderBadges();
  }

  function renderBadges() {
    responseCards.forEach(function (card) {
      var n = Number(card.dataset.number);
      var badge = card.querySelector("[data-rank-badge]");
      var text = "";
      if (mode === "pair" && state.choice) {
        text = state.choice === "tie" ? "Yours: tie" : (String(n) === state.choice ? "Yours: better" : "Yours: worse");
      } else if (mode === "rank") {
        var gi = state.groups.findIndex(function (g) { return g.indexOf(n) !== -1; });
        if (gi !== -1) text = "Yours: " + ordinal(gi + 1) + (state.groups[gi].length > 1 ? " (tie)" : "");
      }
      badge.textContent = text;
      badge.hidden = !text;
    });
  }

  function toggleAllBad() {
    state.allBad = !state.allBad;
    $("correct-all-bad").checked = state.allBad;
    clearError();
  }

  function correctionKey(e, key, lower) {
    var k = responseCards.length;
    var num = /^[1-9]$/.test(key) ? Number(key) : null;
    if (pendingTie) {
      pendingTie = false;
      showHint("");
      if (num && num <= k) rankAppend(num, true);
      return true;
    }
    if (key === "Enter") {
      var t = e.target;
      if (t.tagName === "BUTTON" || t.tagName === "A") return false;
      saveCorrection();
      return true;
    }
    if (lower === "b") { toggleAllBad(); return true; }
    if (lower === "m") { $("correct-comment").focus(); return true; }
    if (lower === "r") { openPanel("reject"); return true; }
    if (mode === "pair") {
      if (key === "1" || key === "2") { setChoice(key); return true; }
      if (key === "3") { setChoice("tie"); return true; }
      var strengths = { a: "much_better", s: "better", d: "slightly_better" };
      if (strengths[lower]) { setStrength(strengths[lower]); return true; }
      return false;
    }
    if (num && num <= k) { rankAppend(num, false); return true; }
    if (lower === "t") {
      if (!state.groups.length) showHint("Rank one response first; T ties the next one with it.");
      else { pendingTie = true; showHint("Tie which response with " + ordinal(state.groups.length) + " place? Press its number.", true); }
      return true;
    }
    if (key === "Backspace") { rankUndo(); return true; }
    return false;
  }

  // ---------------------------------------------------------------- guidelines

  var guidelines = $("guidelines");
  var guidelinesToggle = $("guidelines-toggle");
  var lastFocus = null;
  function toggleGuidelines(open) {
    open = open === undefined ? guidelines.hidden : open;
    if (open) lastFocus = document.activeElement;
    guidelines.hidden = !open;
    guidelinesToggle.setAttribute("aria-expanded", String(open));
    if (open) $("guidelines-close").focus();
    else if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  guidelinesToggle.addEventListener("click", function () { toggleGuidelines(); });
  $("guidelines-close").addEventListener("click", function () { toggleGuidelines(false); });

  // ---------------------------------------------------------------- keyboard

  function onKey(e) {
    if (e.defaultPrevented || e.isComposing) return;
    var mod = e.ctrlKey || e.metaKey;
    var key = e.key;
    if (mod && key === "Enter") {
      e.preventDefault();
      if (panel === "reject") reject();
      else if (panel === "correct") saveCorrection();
      else showHint("A accepts; R or C opens a panel first.");
      return;
    }
    if (key === "Escape") {
      if (pendingTie) { pendingTie = false; showHint(""); return; }
      if (!guidelines.hidden) { toggleGuidelines(false); return; }
      if (isTyping(e.target)) { e.target.blur(); return; }
      if (panel) openPanel(null);
      return;
    }
    if (isTyping(e.target) || mod || e.altKey) return;
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (lower === "g" || key === "?") { e.preventDefault(); toggleGuidelines(); return; }
    if (!guidelines.hidden) return;
    if (panel === "correct" && mode !== "demo") {
      if (correctionKey(e, key, lower)) e.preventDefault();
      return;
    }
    if (lower === "a") {
      e.preventDefault();
      if (panel) { showHint("Esc closes the panel; then A accepts."); return; }
      accept();
      return;
    }
    if (lower === "r") { e.preventDefault(); openPanel("reject"); return; }
    if (lower === "c") { e.preventDefault(); openPanel("correct"); return; }
  }
  document.addEventListener("keydown", onKey);

  // ---------------------------------------------------------------- wiring

  $("accept-btn").addEventListener("click", accept);
  $("reject-open").addEventListener("click", function () { openPanel("reject"); });
  $("correct-open").addEventListener("click", function () { openPanel("correct"); });
  $("reject-submit").addEventListener("click", reject);
  $("correct-submit").addEventListener("click", saveCorrection);
  $("reject-comment").addEventListener("input", clearError);
  if (mode !== "demo") {
    $("correct-all-bad").checked = state.allBad;
    $("correct-all-bad").addEventListener("change", function (e) { state.allBad = e.target.checked; clearError(); });
  } else {
    $("correct-text").addEventListener("input", clearError);
  }
  if (mode === "pair") {
    Array.prototype.forEach.call(document.querySelectorAll("input[name=strength]"), function (r) {
      r.addEventListener("change", function () { setStrength(r.value); });
    });
  }
  if (mode === "rank") renderRanking();
  app.dataset.ready = "true";
})();
