// The mailbox form: show only the fields of the chosen protocol and sign-in (a
// static file: the CSP allows no inline script).  The server renders the same
// choice with `hidden`, so the page reads right without this script; hidden
// fields are still posted, so hiding one never changes a setting.
(function () {
  "use strict";
  var form = document.querySelector("form.settings-form");
  if (!form) return;
  var protocol = form.querySelector("[name=protocol]");
  var auth = form.querySelector("[name=auth]");

  function allows(field, attribute, value) {
    var list = field.getAttribute(attribute);
    return !list || !value || list.split(" ").indexOf(value) >= 0;
  }

  function update() {
    var p = protocol ? protocol.value : "";
    // A maildir mailbox has no sign-in: its auth select is hidden and means nothing.
    var a = auth && allows(auth.closest(".field"), "data-protocols", p) ? auth.value : "";
    Array.prototype.forEach.call(form.querySelectorAll(".field"), function (field) {
      var applies = allows(field, "data-protocols", p) && allows(field, "data-auth", a);
      field.hidden = !applies && !field.classList.contains("field-invalid");
    });
    Array.prototype.forEach.call(form.querySelectorAll("fieldset"), function (set) {
      set.hidden = !set.querySelector(".field:not([hidden])");
      var fold = set.parentElement;
      if (fold && fold.tagName === "DETAILS") fold.hidden = set.hidden;
    });
  }

  [protocol, auth].forEach(function (select) {
    if (select) select.addEventListener("change", update);
  });
  update();
})();
