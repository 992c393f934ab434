/* New-run form, "Training data": how many examples (sft) or pairs (reward, dpo) each quality filter
   keeps on its own, and the chosen filters together. Asks GET /api/projects/<id>/export/counts/
   whenever the project, the kind or a filter changes; the answer to an older question is dropped.
   The server decides what a run gets; these numbers only help to choose. */
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  var box = form && form.querySelector("[data-counts-url]");
  if (!box) return;
  var total = box.querySelector("[data-role=data-counts]");
  var asked = 0;
  var timer = null;

  function kind() {
    var checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "sft";
  }
  function formatOf(k) {
    if (k === "sft") return "sft";
    if (k === "reward" || k === "dpo") return "preference";
    return "";
  }
  function clear(text) {
    box.querySelectorAll("[data-count-for]").forEach(function (span) { span.textContent = ""; });
    total.textContent = text || "";
  }
  function query(format) {
    var params = new URLSearchParams({ format: format });
    ["exclude_gold", "reviewed_only", "exclude_flagged"].forEach(function (name) {
      var input = form.querySelector("[name=data_" + name + "]");
      if (input && input.checked) params.set(name, "true");
    });
    var competence = form.querySelector("[name=data_min_competence]");
    if (competence && competence.value.trim() !== "") params.set("min_competence", competence.value.trim());
    var consensus = form.querySelector("[name=data_consensus]");
    if (format === "preference" && consensus && consensus.value) params.set("consensus", consensus.value);
    var ties = form.querySelector("[name=data_ties]");
    if (format === "preference" && ties && ties.checked) params.set("ties", "true");
    return params.toString();
  }
  function show(body, format) {
    var unit = format === "sft" ? "examples" : format === "preference" ? "pairs" : "lines";
    box.querySelectorAll("[data-count-for]").forEach(function (span) {
      var name = span.dataset.countFor;
      var count = body.each ? body.each[name] : null;
      var error = body.errors ? body.errors[name] : null;
      var what = name === "consensus" ? "one pair per comparison: " : "keeps ";
      var known = count !== null && count !== undefined;
      if (error) span.textContent = error;
      else if (!known) span.textContent = "";
      else if (name === "ties") span.textContent = "with tied pairs: " + count + " (" + body.all + " without)";
      else span.textContent = what + count + " of " + body.all;
    });
    var text = body.selected === null ? "" : body.selected > body.all
      ? "With the filters chosen: " + body.selected + " " + unit + " (" + body.all + " without them)."
      : "With the filters chosen: " + body.selected + " of " + body.all + " " + unit + ".";
    if (body.selected === 0) text += " A run needs at least one.";
    total.textContent = text;
  }
  function refresh() {
    var project = form.querySelector("[name=project]");
    var format = formatOf(kind());
    if (!project || !project.value || !format) { clear(); return; }
    var mine = ++asked;
    total.textContent = "Counting…";
    var url = box.dataset.countsUrl.replace("{project}", encodeURIComponent(project.value)) + "?" + query(format);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (mine !== asked) return;
        if (!answer.ok) { clear(answer.body.detail || "Could not count."); return; }
        show(answer.body, format);
      })
      .catch(function () { if (mine === asked) clear("Could not count."); });
  }
  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 250);
  }
  form.addEventListener("change", function (event) {
    var name = event.target.name || "";
    if (name === "project" || name === "kind" || name.indexOf("data_") === 0) later();
  });
  form.addEventListener("input", function (event) {
    if (event.target.name === "data_min_competence") later();
  });
  refresh();
})();
