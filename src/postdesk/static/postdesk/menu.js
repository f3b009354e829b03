// The top bar on a phone: the queue, mailbox and admin links fold behind a Menu
// button (a static file: the CSP allows no inline script).  Without this script
// the button stays hidden and every link shows, as on a wide screen; with it,
// `menu-ready` lets app.css fold the links away below 700 px.
(function () {
  "use strict";
  var bar = document.querySelector(".topbar");
  var button = bar && bar.querySelector(".menu-button");
  if (!button) return;
  var current = bar.querySelector(".topbar-menu [aria-current=page]");
  if (current) button.textContent = "Menu: " + current.firstChild.textContent.trim();
  button.hidden = false;
  bar.classList.add("menu-ready");

  function setOpen(open) {
    bar.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }

  button.addEventListener("click", function () {
    setOpen(!bar.classList.contains("menu-open"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("menu-open")) {
      setOpen(false);
      button.focus();
    }
  });
})();
