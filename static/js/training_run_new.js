/* New-run form: switching the kind swaps the config fields for that pipeline's, with its
   defaults and bounds (embedded as JSON by the page), and shows the reward model only for rlhf.
   The values typed for each kind are kept while the form is open. Number inputs get the same
   min/max/step as training/forms.py number_attrs writes; the server still checks every value. */
(function () {
  "use strict";
  var form = document.getElementById("run-form");
  var defaultsNode = document.getElementById("pipeline-defaults");
  if (!form || !defaultsNode) return;
  var defaults = JSON.parse(defaultsNode.textContent);
  var groups = JSON.parse(document.getElementById("config-groups").textContent);  // kind -> group -> [field]
  var container = document.getElementById("config-fields");
  var PREFIX = "config-";
  var edited = {};  // kind -> {field: text}

  // The same rules as training.forms.config_input_kind.
  function inputKind(spec) {
    var t = String(spec.type || "").toLowerCase();
    if (spec.choices && spec.choices.length) return "choice";
    if (t === "bool") return spec.nullable ? "tristate" : "checkbox";
    if (t === "int" || t === "float") return "number";
    if (t === "list" || t === "json" || t === "dict") return "json";
    return "text";
  }
  function toText(value, type) {
    if (value === null || value === undefined) return "";
    if (type === "float" && typeof value === "number" && Number.isInteger(value)) return value.toFixed(1);
    if (typeof value === "boolean") return value ? "true" : "false";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  // The same as training.forms.number_attrs.
  function numberAttrs(spec) {
    var also = (spec.also || []).filter(function (v) { return typeof v === "number"; });
    var attrs = { step: spec.type === "int" ? "1" : "any" };
    if (typeof spec.min === "number") attrs.min = String(Math.min.apply(null, [spec.min].concat(also)));
    if (typeof spec.max === "number") attrs.max = String(Math.max.apply(null, [spec.max].concat(also)));
    return attrs;
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (attrs[k] !== false && attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k] === true ? "" : attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function selectedKind() {
    var checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "sft";
  }

  function currentValues() {
    var values = {};
    container.querySelectorAll("[data-config-field]").forEach(function (field) {
      var name = field.dataset.configField;
      var box = field.querySelector("input[type=checkbox]");
      var input = box || field.querySelector("select, input[type=text], input[type=number]");
      values[name] = box ? (box.checked ? "true" : "false") : input.value;
    });
    return values;
  }

  function fieldNode(name, spec, text) {
    var kind = inputKind(spec), id = "id_" + PREFIX + name, control;
    var typeText = (spec.type || "") + (spec.nullable ? " or null" : "");
    var label = el("label", { for: id }, [el("code", { text: name }), el("span", { class: "config-type", text: typeText })]);
    if (kind === "checkbox") {
      control = el("span", {}, [
        el("input", { type: "hidden", name: PREFIX + name, value: "false" }),
        el("label", { class: "switch" }, [
          el("input", { type: "checkbox", id: id, name: PREFIX + name, value: "true", checked: text === "true" }),
          el("span", { text: " enabled" })
        ])
      ]);
    } else if (kind === "choice") {
      var options = (spec.nullable ? [el("option", { value: "", text: "null", selected: text === "" })] : []).concat(
        spec.choices.map(function (choice) {
          var value = toText(choice);
          return el("option", { value: value, text: value, selected: value === text });
        }));
      control = el("select", { id: id, name: PREFIX + name }, options);
    } else if (kind === "tristate") {
      control = el("select", { id: id, name: PREFIX + name }, [
        el("option", { value: "", text: "auto", selected: text !== "true" && text !== "false" }),
        el("option", { value: "true", text: "true", selected: text === "true" }),
        el("option", { value: "false", text: "false", selected: text === "false" })
      ]);
    } else if (kind === "number") {
      var bounds = numberAttrs(spec);
      control = el("input", {
        type: "number", id: id, name: PREFIX + name, value: text, autocomplete: "off", step: bounds.step,
        min: bounds.min, max: bounds.max, placeholder: toText(spec.default, spec.type) || "null"
      });
    } else {
      var fallback = toText(spec.default, spec.type);
      control = el("input", {
        type: "text", id: id, name: PREFIX + name, value: text, autocomplete: "off", spellcheck: "false",
        placeholder: fallback || "null"
      });
    }
    var help = null;
    if (spec.help) {
      help = el("p", { class: "help", text: spec.help + " " });
      if (spec.bounds && kind !== "choice") {
        help.appendChild(el("span", { class: "config-bounds", "data-role": "bounds", text: "Allowed: " + spec.bounds + ". " }));
      }
      if (toText(spec.default)) {
        help.appendChild(el("span", { class: "muted" }, [document.createTextNode("Default: "), el("code", { text: toText(spec.default, spec.type) })]));
      }
    }
    return el("div", { class: "config-field", "data-config-field": name }, [label, control, help]);
  }

  function renderConfig(kind, values) {
    var schema = defaults[kind] || {};
    container.querySelectorAll("[data-config-section]").forEach(function (section) {
      var names = (groups[kind] || {})[section.dataset.configSection] || [];
      var nodes = names.filter(function (name) { return name in schema; }).map(function (name) {
        var text = values && name in values ? values[name] : toText(schema[name].default, schema[name].type);
        return fieldNode(name, schema[name], text);
      });
      var grid = section.querySelector(".config-grid");
      grid.replaceChildren.apply(grid, nodes);
      section.hidden = !nodes.length;
      if (section.dataset.configSection === "pipeline") section.querySelector("h3").textContent = kind.toUpperCase() + " options";
    });
    var label = form.querySelector("[data-role=config-kind]");
    if (label) label.textContent = kind.toUpperCase() + " pipeline";
  }

  function showKindRows(kind) {
    form.querySelectorAll("[data-only-kind]").forEach(function (row) {
      row.hidden = row.dataset.onlyKind.split(" ").indexOf(kind) === -1;
    });
  }

  var shown = selectedKind();
  form.querySelectorAll("input[name=kind]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var kind = selectedKind();
      if (kind === shown) return;
      edited[shown] = currentValues();
      renderConfig(kind, edited[kind]);
      showKindRows(kind);
      shown = kind;
    });
  });
  var reset = form.querySelector("[data-action=reset-config]");
  if (reset) reset.addEventListener("click", function () { delete edited[shown]; renderConfig(shown, null); });
  form.addEventListener("submit", function () {
    var submit = form.querySelector("button[type=submit]");
    window.setTimeout(function () { submit.disabled = true; submit.textContent = "Starting…"; }, 0);
  });
  showKindRows(shown);
  var firstError = form.querySelector(".has-error input:not([type=hidden]), .has-error select");
  if (firstError) firstError.focus();
})();
