// The queue page's selection and bulk bar (a static file: the CSP allows no inline script).
//   a row's checkbox, "select all on this page", the count of selected rows,
//   the value field of the chosen action (assignee, tag, priority, merge target),
//   `x` selects the focused row; selections survive the live refresh of the rows (live.js).
(function () {
  "use strict";
  var bar = document.getElementById("bulk");
  var list = document.querySelector(".queue-list");
  if (!bar || !list) return;
  var chosen = {};  // request number -> true, kept across live.js replacing the rows

  function boxes() { return Array.prototype.slice.call(list.querySelectorAll("input[name=pick]")); }

  function show() {
    var count = 0;
    boxes().forEach(function (box) {
      box.checked = !!chosen[box.value];
      box.closest("tr").classList.toggle("picked", box.checked);
      if (box.checked) count += 1;
    });
    var all = list.querySelector("[data-pick-all]");
    if (all) all.checked = count > 0 && count === boxes().length;
    bar.querySelector("[data-bulk-count]").textContent = String(count);
    bar.classList.toggle("has-selection", count > 0);
  }

  function showValue() {
    var action = bar.querySelector("select[name=action]").value;
    bar.querySelectorAll(".bulk-value").forEach(function (el) {
      el.hidden = el.getAttribute("data-for") !== action;
    });
  }

  list.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("[data-pick-all]")) {
      boxes().forEach(function (box) { if (el.checked) chosen[box.value] = true; else delete chosen[box.value]; });
    } else if (el.name === "pick") {
      if (el.checked) chosen[el.value] = true; else delete chosen[el.value];
    }
    show();
  });
  new MutationObserver(show).observe(list, { childList: true });
  bar.querySelector("select[name=action]").addEventListener("change", showValue);

  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key !== "x" || event.altKey || event.ctrlKey || event.metaKey) return;
    if (el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName))) return;
    var row = el && el.closest ? el.closest("tr[data-number]") : null;
    if (!row) return;
    event.preventDefault();
    var number = row.getAttribute("data-number");
    if (chosen[number]) delete chosen[number]; else chosen[number] = true;
    show();
  });

  showValue();
  show();
})();
