/* FeedbackLoop work page: keyboard-first labeling. Plain ES2017, no build step, no libraries.
 *
 * The server renders the task (its Markdown already sanitised) and leases it. This script
 * collects the labeler's answer, submits it to the API with one client_id per page load (so a
 * retry or a double press stores one annotation), keeps a draft in localStorage, sends the lease
 * heartbeat, and opens the next task by reloading the page.
 */
(function () {
  "use strict";

  var app = document.getElementById("label-app");
  if (!app) return;
  var common = window.FeedbackLoopWork; // static/js/work_common.js
  var newUuid = common.newUuid, isTyping = common.isTyping;

  var task = JSON.parse(document.getElementById("task-data").textContent);
  var kind = app.dataset.kind;
  var compareForm = document.getElementById("compare-form");
  var mode = kind === "demonstration" ? "demo" : compareForm.dataset.mode; // demo | pair | rank
  var clientId = newUuid();
  var draftKey = "feedbackloop:draft:" + task.id;
  var submitting = false;
  var leaseLost = false;
  var revealShown = false; // training mode: the expected answer of a gold task is on screen

  var $ = function (id) { return document.getElementById(id); };
  var errorBox = $("form-error");
  var submitBtn = $("submit-btn");
  var draftStatus = $("draft-status");
  var keyHint = $("key-hint");

  // ---------------------------------------------------------------- helpers

  function postJson(url, body) { return common.postJson(url, body, app.dataset.csrfToken); }

  function timeSpentMs() { return Math.max(0, Math.round(performance.now())); }

  function storageGet() {
    try { return JSON.parse(window.localStorage.getItem(draftKey) || "null"); } catch (e) { return null; }
  }
  function storageSet(value) {
    try { window.localStorage.setItem(draftKey, JSON.stringify(value)); return true; } catch (e) { return false; }
  }
  function storageClear() {
    clearTimeout(saveTimer);
    saveTimer = null;
    try { window.localStorage.removeItem(draftKey); } catch (e) { /* private mode */ }
  }

  var hintTimer = null;
  function showHint(text, sticky) {
    if (!keyHint) return;
    keyHint.textContent = text;
    keyHint.hidden = !text;
    clearTimeout(hintTimer);
    if (text && !sticky) hintTimer = setTimeout(function () { keyHint.hidden = true; }, 3500);
  }

  var FIELD_TARGETS = {
    text: "demo-text", ranking: "ranking-section", strength: "strength", flags: "compare-form",
    rationale: "rationale", all_bad: "all-bad", reason: "skip-reason",
    edit: "edit-section", "edit.text": "edit-text", "edit.response_id": "edit-section",
  };

  function clearError() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    Array.prototype.forEach.call(document.querySelectorAll(".invalid"), function (el) { el.classList.remove("invalid"); });
  }

  function showError(message, field, box) {
    box = box || errorBox;
    box.textContent = "";
    if (field) {
      var strong = document.createElement("strong");
      strong.textContent = field + ": ";
      box.appendChild(strong);
    }
    box.appendChild(document.createTextNode(message));
    box.hidden = false;
    var target = field && FIELD_TARGETS[field] ? $(FIELD_TARGETS[field]) : null;
    if (target) target.classList.add("invalid");
  }

  function apiError(result) {
    var d = result.data || {};
    var message = d.detail || (result.status >= 500 ? "The server failed (" + result.status + ")." : "Request failed (" + result.status + ").");
    var field = d.field || null;
    if (!d.detail && d && typeof d === "object") {
      // A DRF validation body: {"field": ["message"]}
      var keys = Object.keys(d);
      if (keys.length) { field = keys[0]; message = [].concat(d[keys[0]]).join(" "); }
    }
    if (Array.isArray(d.errors) && d.errors.length) {
      message += " " + d.errors.map(function (e) { return typeof e === "string" ? e : (e.message || JSON.stringify(e)); }).join(" ");
    }
    return { message: message + " Your work is still here.", field: field };
  }

  function goNext() {
    storageClear();
    window.location.replace(window.location.pathname);
  }

  function setBusy(busy) {
    submitting = busy;
    submitBtn.disabled = busy;
    submitBtn.classList.toggle("busy", busy);
  }

  // ---------------------------------------------------------------- submitting

  function submit() {
    if (submitting) return;
    clearError();
    var body = collect();
    if (body.error) { showError(body.error.message, body.error.field); return; }
    body.client_id = clientId;
    body.time_spent_ms = timeSpentMs();
    setBusy(true);
    postJson(app.dataset.submitUrl, body).then(function (result) {
      if (result.status === 201 || result.status === 200) { afterSubmit(result.data); return; }
      setBusy(false);
      var err = apiError(result);
      showError(err.message, err.field);
    }).catch(function () {
      setBusy(false);
      showError("Network error: nothing was lost. Check your connection and submit again.", null);
    });
  }

  // ---------------------------------------------------------------- training mode

  // In a project's training mode the answer to a gold task carries `gold`, the expected answer:
  // show it (and its explanation) before the next task. Otherwise, and for every other task, the
  // next task opens at once, so nothing tells a gold task apart.
  function afterSubmit(data) {
    if (data && data.gold) { showGoldReveal(data.gold); return; }
    goNext();
  }

  function responseNumber(id) {
    for (var i = 0; i < task.responses.length; i++) if (task.responses[i].id === id) return i + 1;
    return null;
  }

  function showGoldReveal(gold) {
    storageClear();
    revealShown = true;
    submitBtn.disabled = true;
    var verdict = $("gold-verdict");
    verdict.textContent = gold.correct === true ? "Your answer matches the expected one."
      : gold.correct === false ? "Your answer differs from the expected one." : "";
    verdict.classList.toggle("good", gold.correct === true);
    verdict.classList.toggle("bad", gold.correct === false);
    var expected = $("gold-expected");
    expected.textContent = "";
    if (gold.kind === "comparison") {
      var list = document.createElement("ol");
      list.className = "gold-ranking";
      gold.ranking.forEach(function (group) {
        var li = document.createElement("li");
        li.textContent = group.map(function (id) { return "Response " + responseNumber(id); }).join(" = ") +
          (group.length > 1 ? " (tie)" : "");
        list.appendChild(li);
      });
      expected.appendChild(list);
    } else {
      var label = document.createElement("p");
      label.className = "muted small";
      label.textContent = "A reference answer:";
      var text = document.createElement("div");
      text.className = "gold-reference";
      text.textContent = gold.reference;
      expected.appendChild(label);
      expected.appendChild(text);
    }
    var explanation = $("gold-explanation");
    explanation.textContent = gold.explanation ? "Why: " + gold.explanation : "";
    explanation.hidden = !gold.explanation;
    $("gold-reveal").hidden = false;
    $("gold-reveal").scrollIntoView({ block: "nearest" });
    $("gold-next").focus();
  }
  $("gold-next").addEventListener("click", goNext);

  function collect() {
    if (mode === "demo") {
      var text = $("demo-text").value;
      if (!text.trim()) return { error: { field: "text", message: "Write a response before submitting." } };
      return { text: text };
    }
    var allBad = $("all-bad").checked;
    var body = { flags: collectFlags(), all_bad: allBad, rationale: $("rationale").value };
    if (mode === "pair") {
      var ids = responseIds();
      if (!state.choice) {
        if (!allBad) return { error: { field: "ranking", message: "Choose 1 or 2 for the better response, or 3 for a tie." } };
        body.ranking = [];
      } else if (state.choice === "tie") {
        body.ranking = [[ids[0], ids[1]]];
      } else {
        if (!state.strength) return { error: { field: "strength", message: "Say how much better: A, S or D." } };
        var win = Number(state.choice) - 1;
        body.ranking = [[ids[win]], [ids[1 - win]]];
        body.strength = state.strength;
      }
      return withEdit(body);
    }
    var ranked = state.groups.reduce(function (n, g) { return n + g.length; }, 0);
    if (ranked === 0 && allBad) { body.ranking = []; return body; }
    if (ranked < responseCards.length) {
      var left = responseCards.length - ranked;
      return { error: { field: "ranking", message: "Rank every response: " + left + " still unranked." } };
    }
    body.ranking = state.groups.map(function (g) { return g.map(function (n) { return responseIds()[n - 1]; }); });
    return withEdit(body);
  }

  // ---------------------------------------------------------------- edit to improve

  // The labeler may rewrite the best response. The rewrite is sent as body.edit and stored by
  // the server as a demonstration and as a preference of the edit over the original.
  function normalised(text) { return text.split(/\s+/).filter(Boolean).join(" "); }
  function originalText(n) { return (task.responses[n - 1] || {}).text || ""; }

  function topNumber() {
    if (mode === "pair") {
      if (state.choice === "1" || state.choice === "2") return Number(state.choice);
      return state.choice === "tie" ? 1 : null;
    }
    return state.groups.length ? state.groups[0][0] : null;
  }

  function showEdit(n, text) {
    state.edit = n;
    $("edit-source").textContent = "Response " + n;
    $("edit-text").value = text;
    $("edit-section").hidden = false;
    $("edit-open").setAttribute("aria-expanded", "true");
  }

  function openEdit() {
    var n = topNumber();
    if (!n) {
      showHint(mode === "pair" ? "Choose the better response first (1, 2 or 3); then E rewrites it."
        : "Rank the best response first; then E rewrites it.");
      return;
    }
    var box = $("edit-text");
    if (state.edit && state.edit !== n && normalised(box.value) !== normalised(originalText(state.edit))) {
      showHint("You are rewriting response " + state.edit + ". X discards it, to rewrite response " + n + " instead.");
    } else if (state.edit !== n) {
      showEdit(n, originalText(n));
      saveDraft();
    }
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function discardEdit() {
    if (!state.edit) { showHint("There is no edit to discard."); return; }
    state.edit = null;
    $("edit-text").value = "";
    $("edit-section").hidden = true;
    $("edit-open").setAttribute("aria-expanded", "false");
    clearError();
    showHint("Edit discarded.");
    saveDraft();
  }

  function withEdit(body) {
    if (!state.edit) return body;
    var text = $("edit-text").value;
    if (!text.trim()) return body; // an emptied edit box means no edit
    if (normalised(text) === normalised(originalText(state.edit))) {
      return { error: { field: "edit.text", message: "Your edit is the same as the original: change it, or discard it with X." } };
    }
    body.edit = { response_id: responseIds()[state.edit - 1], text: text };
    return body;
  }

  // ---------------------------------------------------------------- comparison state

  var responseCards = Array.prototype.slice.call(document.querySelectorAll(".response"));
  function responseIds() { return responseCards.map(function (c) { return Number(c.dataset.responseId); }); }
  var state = { choice: null, strength: null, groups: [], edit: null }; // edit: the rewritten response's number
  var history = [];
  var pending = null; // null | "tie" | "flag" | {flag: n}

  function collectFlags() {
    var flags = {};
    responseCards.forEach(function (card) {
      var on = Array.prototype.filter.call(card.querySelectorAll("input[data-flag]"), function (i) { return i.checked; })
        .map(function (i) { return i.dataset.flag; });
      if (on.length) flags[card.dataset.responseId] = on;
    });
    return flags;
  }

  function setChoice(choice) {
    state.choice = choice;
    Array.prototype.forEach.call(document.querySelectorAll(".choice"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.choice === choice));
    });
    var strength = $("strength");
    strength.disabled = choice === "tie" || !choice;
    responseCards.forEach(function (card) {
      var n = card.dataset.number;
      card.classList.toggle("winner", choice === n);
      card.classList.toggle("tied", choice === "tie");
    });
    clearError();
    saveDraft();
  }

  function setStrength(value) {
    if (!state.choice || state.choice === "tie") {
      showHint("Choose the better response first (1 or 2).");
      return;
    }
    state.strength = value;
    Array.prototype.forEach.call(document.querySelectorAll("input[name=strength]"), function (r) { r.checked = r.value === value; });
    saveDraft();
  }

  function rankedNumbers() { return [].concat.apply([], state.groups); }

  function changeRanking(mutate) {
    history.push(JSON.stringify(state.groups));
    mutate();
    state.groups = state.groups.filter(function (g) { return g.length; });
    clearError();
    renderRanking();
    saveDraft();
  }

  function rankAppend(n, tie) {
    if (rankedNumbers().indexOf(n) !== -1) {
      showHint("Response " + n + " is ranked already. Backspace undoes, or drag it.");
      return;
    }
    changeRanking(function () {
      if (tie && state.groups.length) state.groups[state.groups.length - 1].push(n);
      else state.groups.push([n]);
    });
  }

  // The buttons under the ranking do by tap what T and Backspace do by key (phones have no keys).
  var tapTie = false;
  function setTapTie(on) {
    tapTie = on && state.groups.length > 0;
    var button = $("rank-tie");
    if (button) button.setAttribute("aria-pressed", String(tapTie));
  }

  function rankUndo() {
    if (!history.length) { showHint("Nothing to undo."); return; }
    state.groups = JSON.parse(history.pop());
    renderRanking();
    saveDraft();
  }

  function rankMove(n, target) {
    // target: {group: i} ties n into group i; {insert: i} makes n its own group at i; "unrank".
    changeRanking(function () {
      var groups = state.groups.map(function (g) { return g.slice(); });
      var marker = [];
      if (target.group !== undefined) groups[target.group].push(marker);
      if (target.insert !== undefined) groups.splice(target.insert, 0, [marker]);
      groups = groups.map(function (g) { return g.filter(function (x) { return x !== n; }); });
      state.groups = groups.map(function (g) { return g.map(function (x) { return x === marker ? n : x; }); });
    });
  }

  function ordinal(i) {
    var s = ["th", "st", "nd", "rd"], v = i % 100;
    return i + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  // A ranked chip is a span (keys and drag move it); a chip still to rank is a button, so a keyboard
  // (Tab, Enter) and a tap reach it too.
  function chip(n, asButton) {
    var el = document.createElement(asButton ? "button" : "span");
    if (asButton) el.type = "button";
    el.className = "chip";
    el.draggable = true;
    el.dataset.number = String(n);
    el.textContent = "Response " + n;
    el.addEventListener("dragstart", function (e) { dragStart(e, n); });
    return el;
  }

  function dropSlot(index, last) {
    var li = document.createElement("li");
    li.className = "drop-slot" + (last ? " drop-slot-last" : "");
    li.dataset.insert = String(index);
    li.setAttribute("aria-hidden", "true");
    if (last) li.textContent = state.groups.length ? "Drop here to add below" : "Press a number or drop a response here";
    return li;
  }

  function renderRanking() {
    var list = $("ranking-list");
    if (!list) return;
    list.textContent = "";
    state.groups.forEach(function (group, i) {
      list.appendChild(dropSlot(i, false));
      var li = document.createElement("li");
      li.className = "rank-group" + (group.length > 1 ? " is-tie" : "");
      li.dataset.group = String(i);
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
        li.appendChild(chip(n));
      });
      if (group.length > 1) {
        var tag = document.createElement("span");
        tag.className = "tie-tag small";
        tag.textContent = "tie";
        li.appendChild(tag);
      }
      list.appendChild(li);
    });
    list.appendChild(dropSlot(state.groups.length, true));
    var tray = $("unranked-tray");
    tray.textContent = "";
    var ranked = rankedNumbers();
    responseCards.forEach(function (card) {
      var n = Number(card.dataset.number);
      if (ranked.indexOf(n) !== -1) return;
      var c = chip(n, true);
      c.title = "Click to add below the others, or drag";
      c.addEventListener("click", function () { rankAppend(n, tapTie); setTapTie(false); });
      tray.appendChild(c);
    });
    if (!tray.childNodes.length) {
      var done = document.createElement("span");
      done.className = "muted small";
      done.textContent = "All ranked — press Enter to submit.";
      tray.appendChild(done);
    }
    responseCards.forEach(function (card) {
      var n = Number(card.dataset.number);
      var badge = card.querySelector("[data-rank-badge]");
      var gi = state.groups.findIndex(function (g) { return g.indexOf(n) !== -1; });
      badge.hidden = gi === -1;
      card.classList.toggle("ranked", gi !== -1);
      if (gi !== -1) badge.textContent = ordinal(gi + 1) + (state.groups[gi].length > 1 ? " (tie)" : "");
    });
  }

  // Drag and drop (HTML5, no library): drop on a place to tie, between places to insert.
  var dragged = null;
  function dragStart(e, n) {
    dragged = n;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", String(n));
  }
  function dropTarget(el) {
    while (el && el !== document) {
      if (el.dataset && (el.dataset.group !== undefined || el.dataset.insert !== undefined || el.dataset.drop)) return el;
      el = el.parentNode;
    }
    return null;
  }
  function setupDrag() {
    responseCards.forEach(function (card) {
      var head = card.querySelector(".response-head");
      head.addEventListener("dragstart", function (e) { dragStart(e, Number(card.dataset.number)); });
    });
    var zone = $("ranking-section");
    zone.addEventListener("dragover", function (e) {
      var t = dropTarget(e.target);
      if (!t || dragged === null) return;
      e.preventDefault();
      Array.prototype.forEach.call(zone.querySelectorAll(".drag-over"), function (x) { x.classList.remove("drag-over"); });
      t.classList.add("drag-over");
    });
    zone.addEventListener("dragleave", function (e) {
      var t = dropTarget(e.target);
      if (t) t.classList.remove("drag-over");
    });
    zone.addEventListener("drop", function (e) {
      var t = dropTarget(e.target);
      var n = dragged === null ? Number(e.dataTransfer.getData("text/plain")) : dragged;
      dragged = null;
      if (!t || !n) return;
      e.preventDefault();
      if (t.dataset.group !== undefined) rankMove(n, { group: Number(t.dataset.group) });
      else if (t.dataset.insert !== undefined) rankMove(n, { insert: Number(t.dataset.insert) });
      else rankMove(n, "unrank");
    });
    document.addEventListener("dragend", function () {
      dragged = null;
      Array.prototype.forEach.call(document.querySelectorAll(".drag-over"), function (x) { x.classList.remove("drag-over"); });
    });
  }

  function toggleFlag(n, flag) {
    var box = $("flag-" + n + "-" + flag);
    if (!box) return;
    box.checked = !box.checked;
    showHint((box.checked ? "Flagged" : "Unflagged") + " response " + n + ": " + box.parentNode.textContent.trim() + ".");
    saveDraft();
  }

  // ---------------------------------------------------------------- drafts

  // A draft is written 250 ms after the last change; the status says "Saving" until then, and a
  // reload or a closed tab inside that window writes it at once, so the last keystrokes survive.
  var saveTimer = null;
  function writeDraft() {
    saveTimer = null;
    var draft = mode === "demo"
      ? { text: $("demo-text").value }
      : {
        choice: state.choice, strength: state.strength, groups: state.groups,
        flags: collectFlags(), all_bad: $("all-bad").checked, rationale: $("rationale").value,
        edit: state.edit ? { number: state.edit, text: $("edit-text").value } : null,
      };
    if (storageSet(draft) && draftStatus) draftStatus.textContent = "Draft saved on this device.";
  }

  function saveDraft() {
    clearTimeout(saveTimer);
    if (draftStatus) draftStatus.textContent = "Saving draft\u2026";
    saveTimer = setTimeout(writeDraft, 250);
  }

  window.addEventListener("pagehide", function () { if (saveTimer) writeDraft(); });

  function restoreDraft() {
    var draft = storageGet();
    if (!draft) return;
    if (mode === "demo") {
      if (draft.text) { $("demo-text").value = draft.text; draftStatus.textContent = "Restored your draft."; }
      return;
    }
    if (mode === "pair" && draft.choice) { setChoice(draft.choice); if (draft.strength) setStrength(draft.strength); }
    if (mode === "rank" && Array.isArray(draft.groups)) {
      var k = responseCards.length;
      state.groups = draft.groups.filter(function (g) {
        return Array.isArray(g) && g.every(function (n) { return n >= 1 && n <= k; });
      });
    }
    Object.keys(draft.flags || {}).forEach(function (rid) {
      var card = app.querySelector('.response[data-response-id="' + rid + '"]');
      if (!card) return;
      (draft.flags[rid] || []).forEach(function (f) {
        var box = card.querySelector('input[data-flag="' + f + '"]');
        if (box) box.checked = true;
      });
    });
    $("all-bad").checked = !!draft.all_bad;
    $("rationale").value = draft.rationale || "";
    if (draft.edit && draft.edit.number >= 1 && draft.edit.number <= responseCards.length) {
      showEdit(draft.edit.number, String(draft.edit.text || ""));
    }
    if (draftStatus) draftStatus.textContent = "Restored your draft.";
  }

  // ---------------------------------------------------------------- guidelines and skip

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

  var skipDialog = $("skip-dialog");
  var skipReason = $("skip-reason");
  var skipError = $("skip-error");
  var skipPresets = Array.prototype.slice.call(skipDialog.querySelectorAll(".preset"));
  function openSkip() {
    skipError.hidden = true;
    if (typeof skipDialog.showModal === "function") skipDialog.showModal();
    else skipDialog.setAttribute("open", "");
    // Focus on the reasons, not the text box, so that their number keys pick one at once.
    (skipPresets[0] || skipReason).focus();
  }
  function pickPreset(button) {
    skipReason.value = button.dataset.reason;
    skipPresets.forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
    skipReason.focus();  // Enter now skips with this reason, or the labeler edits it
  }
  function closeSkip() {
    if (typeof skipDialog.close === "function") skipDialog.close();
    else skipDialog.removeAttribute("open");
  }
  function confirmSkip() {
    if (submitting) return;
    var reason = skipReason.value.trim();
    if (!reason) { showError("Give a reason, or pick one above.", "reason", skipError); skipReason.focus(); return; }
    setBusy(true);
    $("skip-confirm").disabled = true;
    postJson(app.dataset.skipUrl, { reason: reason, client_id: clientId, time_spent_ms: timeSpentMs() }).then(function (result) {
      if (result.status === 201 || result.status === 200) { closeSkip(); afterSubmit(result.data); return; }
      setBusy(false);
      $("skip-confirm").disabled = false;
      var err = apiError(result);
      showError(err.message, err.field, skipError);
    }).catch(function () {
      setBusy(false);
      $("skip-confirm").disabled = false;
      showError("Network error: try again.", null, skipError);
    });
  }
  $("skip-open").addEventListener("click", openSkip);
  $("skip-cancel").addEventListener("click", closeSkip);
  $("skip-form").addEventListener("submit", function (e) { e.preventDefault(); confirmSkip(); });
  skipPresets.forEach(function (b) { b.addEventListener("click", function () { pickPreset(b); }); });
  skipDialog.addEventListener("keydown", function (e) {
    var preset = /^[1-9]$/.test(e.key) && !isTyping(e.target) ? skipPresets[Number(e.key) - 1] : null;
    if (preset) { e.preventDefault(); e.stopPropagation(); pickPreset(preset); return; }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      if (e.target.tagName === "BUTTON" && e.target.type === "button") return; // presets, cancel
      e.preventDefault();
      confirmSkip();
    }
    e.stopPropagation();
  });

  // ---------------------------------------------------------------- keyboard

  var FLAG_KEYS = { i: "fails_instruction", e: "factual_error", h: "harmful", 1: "fails_instruction", 2: "factual_error", 3: "harmful" };

  function onKey(e) {
    if (e.defaultPrevented || e.isComposing) return;
    if (revealShown) {
      if (e.key === "Enter") { e.preventDefault(); goNext(); }
      return;
    }
    if (skipDialog.open) return;
    var mod = e.ctrlKey || e.metaKey;
    var key = e.key;
    if (mod && key === "Enter") { e.preventDefault(); submit(); return; }
    if (mod && (key === "s" || key === "S")) { e.preventDefault(); openSkip(); return; }
    if (key === "Escape") {
      if (pending) { pending = null; showHint(""); return; }
      if (!guidelines.hidden) { toggleGuidelines(false); return; }
      if (isTyping(e.target)) e.target.blur();
      return;
    }
    if (isTyping(e.target) || mod || e.altKey) return;
    if (key === "Enter") {
      var t = e.target;
      if ((t.tagName === "BUTTON" || t.tagName === "A" || t.tagName === "SUMMARY") && !t.hasAttribute("data-enter-submits")) return;
      if (mode !== "demo") { e.preventDefault(); submit(); }
      return;
    }
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (lower === "g" || key === "?") { e.preventDefault(); toggleGuidelines(); return; }
    if (mode === "demo") return;
    if (!guidelines.hidden) return;
    var k = responseCards.length;
    var num = /^[1-9]$/.test(key) ? Number(key) : null;

    if (pending === "flag") {
      pending = null;
      if (num && num <= k) {
        pending = { flag: num };
        showHint("Flag response " + num + ": I fails the instruction · E factual error · H harmful", true);
      } else showHint("");
      e.preventDefault();
      return;
    }
    if (pending && pending.flag) {
      var n = pending.flag;
      pending = null;
      showHint("");
      if (FLAG_KEYS[lower]) toggleFlag(n, FLAG_KEYS[lower]);
      e.preventDefault();
      return;
    }
    if (pending === "tie") {
      pending = null;
      showHint("");
      if (num && num <= k) rankAppend(num, true);
      e.preventDefault();
      return;
    }
    if (lower === "f") { pending = "flag"; showHint("Flag which response? Press 1–" + k + ".", true); e.preventDefault(); return; }
    if (lower === "b") { var ab = $("all-bad"); ab.checked = !ab.checked; saveDraft(); clearError(); e.preventDefault(); return; }
    if (lower === "r") { e.preventDefault(); $("rationale").focus(); return; }
    if (lower === "e") { e.preventDefault(); openEdit(); return; }
    if (lower === "x") { e.preventDefault(); discardEdit(); return; }

    if (mode === "pair") {
      if (key === "1" || key === "2") { setChoice(key); e.preventDefault(); return; }
      if (key === "3") { setChoice("tie"); e.preventDefault(); return; }
      var strengths = { a: "much_better", s: "better", d: "slightly_better" };
      if (strengths[lower]) { setStrength(strengths[lower]); e.preventDefault(); return; }
      return;
    }
    // rank mode
    if (num && num <= k) { rankAppend(num, false); e.preventDefault(); return; }
    if (lower === "t") {
      if (!state.groups.length) { showHint("Rank one response first; T ties the next one with it."); }
      else { pending = "tie"; showHint("Tie which response with " + ordinal(state.groups.length) + " place? Press its number.", true); }
      e.preventDefault();
      return;
    }
    if (key === "Backspace") { e.preventDefault(); rankUndo(); }
  }
  document.addEventListener("keydown", onKey);

  // ---------------------------------------------------------------- wiring

  if (mode === "demo") {
    var textarea = $("demo-text");
    $("demo-form").addEventListener("submit", function (e) { e.preventDefault(); submit(); });
    textarea.addEventListener("input", function () { clearError(); saveDraft(); });
    restoreDraft();
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  } else {
    compareForm.addEventListener("submit", function (e) { e.preventDefault(); submit(); });
    compareForm.addEventListener("change", function (e) {
      if (e.target.name === "strength") { setStrength(e.target.value); return; }
      clearError();
      saveDraft();
    });
    $("rationale").addEventListener("input", saveDraft);
    $("edit-text").addEventListener("input", function () { clearError(); saveDraft(); });
    $("edit-open").addEventListener("click", openEdit);
    $("edit-discard").addEventListener("click", discardEdit);
    Array.prototype.forEach.call(document.querySelectorAll(".choice"), function (b) {
      b.addEventListener("click", function () { setChoice(b.dataset.choice); });
    });
    if (mode === "rank") {
      setupDrag();
      $("rank-tie").addEventListener("click", function () { setTapTie(!tapTie); });
      $("rank-undo").addEventListener("click", rankUndo);
    }
    restoreDraft();
    if (mode === "rank") renderRanking();
  }

  // ---------------------------------------------------------------- lease heartbeat

  var banner = $("lease-banner");
  function heartbeat() {
    if (submitting) return;
    postJson(app.dataset.heartbeatUrl).then(function (result) {
      if (result.status === 409) {
        leaseLost = true;
        banner.textContent = "Your lease on this task expired" +
          (result.data && result.data.detail ? ": " + result.data.detail : ".") +
          " You can still submit: your work will be kept.";
        banner.hidden = false;
      } else if (result.ok && leaseLost) {
        leaseLost = false;
        banner.hidden = true;
      }
    }).catch(function () { /* offline: the next beat tries again */ });
  }
  var every = Math.max(5, (task.lease_seconds || 600) / 3) * 1000;
  setInterval(heartbeat, every);
  app.dataset.ready = "true";
})();
