// Keyboard shortcuts for people who live in the queue (a static file: the CSP
// allows no inline script).  Never active while typing in a field.
//   /       search            j / k   next / previous request in a queue
//   Enter   open the selected request      t   take the open request
//   g then g / m / a   General, Mine, All
(function () {
  "use strict";
  var pendingG = false;

  function typing(event) {
    var el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function rowLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("table.requests td.subject > a"));
  }

  function move(step) {
    var links = rowLinks();
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = at < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, at + step));
    links[next].focus();
    links[next].closest("tr").scrollIntoView({ block: "nearest" });
  }

  function go(queue) {
    var link = document.querySelector('.queues a[href$="/queue/' + queue + '/"]');
    if (link) window.location.href = link.href;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event)) return;
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      var target = { g: "general", m: "mine", a: "all" }[key];
      if (target) { event.preventDefault(); go(target); }
      return;
    }
    if (key === "/") {
      var search = document.getElementById("q");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    } else if (key === "j") {
      event.preventDefault(); move(1);
    } else if (key === "k") {
      event.preventDefault(); move(-1);
    } else if (key === "g") {
      pendingG = true;
    } else if (key === "t") {
      var take = document.querySelector('form[action$="/take/"] button');
      if (take) { event.preventDefault(); take.click(); }
    }
  });
})();
