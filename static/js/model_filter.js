/* Model selects show the chosen project's own models and the global ones: the models its jobs may use.
 *
 * Each <select data-models-of="project"> has options with data-project (empty for a global model);
 * when the form's project select changes, options of other projects are hidden, and a hidden choice
 * gives way to the first one left. The server applies the same rule, so this is only a convenience.
 */
(function () {
  "use strict";

  function filter(form) {
    var project = form.querySelector('select[name="project"]');
    if (!project) return;
    form.querySelectorAll("select[data-models-of]").forEach(function (select) {
      var firstVisible = null;
      Array.prototype.forEach.call(select.options, function (option) {
        var owner = option.dataset.project;
        var hide = owner !== undefined && owner !== "" && owner !== project.value;
        option.hidden = hide;
        option.disabled = hide;
        if (!hide && option.value && firstVisible === null) firstVisible = option;
      });
      var chosen = select.options[select.selectedIndex];
      if (chosen && chosen.hidden && firstVisible) select.value = firstVisible.value;
    });
  }

  document.querySelectorAll("form").forEach(function (form) {
    var project = form.querySelector('select[name="project"]');
    if (!project || !form.querySelector("select[data-models-of]")) return;
    project.addEventListener("change", function () { filter(form); });
    filter(form);
  });
})();
