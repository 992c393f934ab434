/* New-run form: the estimated memory per GPU, asked of POST /api/training-runs/estimate/ as the
   kind, project, base model or config change. Choosing a preset fills its values into the fields
   (the server resolves auto by the model's size), so the form shows what the run will use and any
   field changed afterwards wins. The arithmetic is the server's (training/pipelines/presets.py). */
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  var box = document.getElementById("memory-estimate");
  var defaultsNode = document.getElementById("pipeline-defaults");
  if (!form || !box || !defaultsNode) return;
  var defaults = JSON.parse(defaultsNode.textContent);
  var presetFields = JSON.parse(box.dataset.presetFields || "[]");
  var summary = box.querySelector("[data-role=memory-summary]");
  var notes = box.querySelector("[data-role=memory-notes]");
  var timer = null, asked = 0;

  function kind() {
    var checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "sft";
  }
  function control(name) {
    var field = form.querySelector('[data-config-field="' + name + '"]');
    if (!field) return null;
    return field.querySelector("input[type=checkbox]") || field.querySelector("select, input[type=text], input[type=number]");
  }
  // The same parsing as training.forms.parse_config_value: text to the JSON value of the field's type.
  function parse(spec, input) {
    if (input.type === "checkbox") return input.checked;
    var raw = input.value.trim(), type = String(spec.type || "").toLowerCase();
    if (type === "bool") return raw === "true" ? true : raw === "false" ? false : null;
    if (raw === "" && spec.nullable) return null;
    if (spec.choices && spec.choices.length) return raw;
    if (type === "int" || type === "float") return raw === "" || isNaN(Number(raw)) ? raw : Number(raw);
    if (type === "list" || type === "json" || type === "dict") { try { return JSON.parse(raw); } catch (e) { return raw; } }
    return raw;
  }
  function config(skipPresetFields) {
    var schema = defaults[kind()] || {}, out = {};
    Object.keys(schema).forEach(function (name) {
      if (skipPresetFields && presetFields.indexOf(name) !== -1) return;
      var input = control(name);
      if (input) out[name] = parse(schema[name], input);
    });
    return out;
  }
  function fill(values) {
    Object.keys(values || {}).forEach(function (name) {
      var input = control(name), value = values[name];
      if (!input) return;
      if (input.type === "checkbox") input.checked = !!value;
      else input.value = value === null || value === undefined ? "" : String(value);
    });
  }
  function show(text, list, over) {
    summary.textContent = text;
    notes.replaceChildren.apply(notes, (list || []).map(function (note) {
      var item = document.createElement("li");
      item.textContent = note;
      return item;
    }));
    box.classList.toggle("memory-estimate--over", !!over);
  }
  function csrf() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function ask(presetChanged) {
    var project = form.querySelector("[name=project]"), model = form.querySelector("[name=base_model]");
    if (!project || !model || !project.value || !model.value) {
      show("Choose a project and a base model to see it.", [], false);
      return;
    }
    var mine = ++asked;
    box.setAttribute("aria-busy", "true");
    summary.textContent = "Estimating…";
    fetch(box.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ kind: kind(), project: Number(project.value), base_model: Number(model.value),
                             config: config(presetChanged) })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      if (mine !== asked) return;  // a newer question is on its way
      box.removeAttribute("aria-busy");
      if (!result.ok) { show(result.body.detail || "No estimate for these settings.", [], false); return; }
      if (presetChanged) fill(result.body.preset_values);
      show(result.body.summary, result.body.notes, !result.body.fits);
    }).catch(function () {
      if (mine === asked) { box.removeAttribute("aria-busy"); show("No estimate: the server did not answer.", [], false); }
    });
  }
  function later(event) {
    var presetChanged = !!(event && event.target && event.target.name === "config-preset");
    window.clearTimeout(timer);
    timer = window.setTimeout(function () { ask(presetChanged); }, presetChanged ? 0 : 300);
  }
  form.addEventListener("change", later);
  form.addEventListener("input", function (event) { if (event.target.type === "number") later(event); });
  ask(false);
})();
