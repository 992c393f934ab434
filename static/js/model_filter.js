/* Model selects show only the models a job may use: the chosen project's own and the global ones,
 * and, where the select says which kinds fit each kind of run (data-fits), only those kinds.
 *
 * Each <select data-models-of="project"> has options with data-project (empty for a global model)
 * and data-kind. When the project or the kind of run changes, the options that do not fit are
 * hidden; a hidden choice gives way to the first one left, and when exactly one fits it is chosen.
 * The server applies the same rules, so this is only a convenience.
 */
(function () {
  "use strict";

  function selectedKind(form) {
    var checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : null;
  }

  function filter(form) {
    var project = form.querySelector('select[name="project"]');
    if (!project) return;
    var kind = selectedKind(form);
    form.querySelectorAll("select[data-models-of]").forEach(function (select) {
      var fits = select.dataset.fits ? JSON.parse(select.dataset.fits) : null;
      var allowed = fits && kind && fits[kind] ? fits[kind] : null;
      var visible = [];
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) return;  // the "Choose a model" line
        var owner = option.dataset.project;
        var hide = (owner !== undefined && owner !== "" && owner !== project.value) ||
          (allowed !== null && allowed.indexOf(option.dataset.kind) === -1);
        option.hidden = hide;
        option.disabled = hide;
        if (!hide) visible.push(option);
      });
      var chosen = select.options[select.selectedIndex];
      if (chosen && chosen.value && chosen.hidden) select.value = visible.length ? visible[0].value : "";
      if (!select.value && visible.length === 1) select.value = visible[0].value;
    });
  }

  document.querySelectorAll("form").forEach(function (form) {
    var project = form.querySelector('select[name="project"]');
    if (!project || !form.querySelector("select[data-models-of]")) return;
    project.addEventListener("change", function () { filter(form); });
    form.querySelectorAll('input[name="kind"]').forEach(function (radio) {
      radio.addEventListener("change", function () { filter(form); });
    });
    filter(form);
  });
})();
