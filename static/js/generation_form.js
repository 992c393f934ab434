/* Generation and evaluation forms: put the focus on the first field the server refused. */
(function () {
  "use strict";
  var bad = document.querySelector(".has-error input, .has-error select");
  if (bad) bad.focus();
})();
