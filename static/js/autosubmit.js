/* Filter forms marked data-autosubmit submit as soon as one of their selects changes. A script
   file instead of an onchange="" attribute, which the Content-Security-Policy refuses; without
   JavaScript the form's <noscript> button submits it. */
(function () {
  "use strict";
  document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
