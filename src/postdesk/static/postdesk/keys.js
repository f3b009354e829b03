// Keyboard shortcuts for people who live in the queue (a static file: the CSP
// allows no inline script).  Never active while typing in a field.
//   /       search            j / k   next / previous request in a queue
//   Enter   open the selected request      t   take the open request
//   g then g / m / a   General, Mine, All
// On a request page (the second part of this file): r reply, n note, c close, a assign,
// j / k next / previous request of the queue one came from, u back to it, ? all shortcuts.
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
    } else if (document.querySelector("article.request") && (key === "j" || key === "k")) {
      return;  // on a request page: the queue one came from (below)
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

// --- the request page --------------------------------------------------------------
// j / k follow the queue the agent came from.  The queue page remembers its list of
// requests (in order, as shown, with its URL) in sessionStorage when it loads and when
// it is left (live.js may have refreshed the rows by then).  Why not ?from=<queue> on
// every link: sessionStorage is per tab, so two tabs on two queues each keep their own
// list; no link or URL (search results, saved views, bulk pages, the customer panel)
// has to carry anything; and a request opened from elsewhere simply has no queue.
(function () {
  "use strict";
  var KEY = "postdesk.queue";

  function requestLinks() {
    var seen = {}, list = [];
    document.querySelectorAll("table.requests td.subject > a").forEach(function (a) {
      var path = new URL(a.href, window.location.href).pathname;
      if (!seen[path]) { seen[path] = true; list.push(path); }
    });
    return list;
  }

  function rememberQueue() {
    if (!document.querySelector("table.requests")) return;
    try {
      sessionStorage.setItem(KEY, JSON.stringify({ url: window.location.pathname + window.location.search, items: requestLinks() }));
    } catch (e) { /* storage full or disabled: j / k just do nothing */ }
  }

  function rememberedQueue() {
    try {
      var queue = JSON.parse(sessionStorage.getItem(KEY) || "null");
      return queue && Array.isArray(queue.items) ? queue : null;
    } catch (e) { return null; }
  }

  rememberQueue();
  window.addEventListener("pagehide", rememberQueue);

  var article = document.querySelector("article.request");
  if (!article) return;

  function typing(event) {
    var el = event.target;
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function say(words) {
    var hint = document.getElementById("key-hint");
    if (!hint) {
      hint = document.createElement("p");
      hint.id = "key-hint";
      hint.className = "key-hint";
      hint.setAttribute("role", "status");
      article.insertBefore(hint, article.firstChild);
    }
    hint.textContent = words;
  }

  function step(by) {
    var queue = rememberedQueue();
    var at = queue ? queue.items.indexOf(window.location.pathname) : -1;
    if (at < 0) { say("j and k follow a queue: open this request from a queue first."); return; }
    var next = queue.items[at + by];
    if (next) window.location.href = next;
    else say(by > 0 ? "This was the last request of that queue page." : "This was the first request of that queue page.");
  }

  function backToQueue() {
    var queue = rememberedQueue();
    window.location.href = queue ? queue.url : "/";
  }

  function compose(tabId) {
    var tab = document.getElementById(tabId);
    if (tab) tab.click();  // the compose tabs (reply / note) when the page has them
    var text = document.getElementById(tabId === "tab-note" ? "note-text" : "reply-text") || document.getElementById("reply-text");
    if (text) { text.focus(); text.scrollIntoView({ block: "center" }); }
  }

  function press(selector) {
    var button = document.querySelector(selector);
    if (button) button.click();
  }

  function showShortcuts() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  var actions = {
    r: function () { compose("tab-reply"); },
    n: function () { compose("tab-note"); },
    c: function () { press('.request-actions form[action$="/close/"] button'); },
    a: function () { var s = document.getElementById("assignee"); if (s) { s.focus(); s.scrollIntoView({ block: "center" }); } },
    j: function () { step(1); },
    k: function () { step(-1); },
    u: backToQueue,
    "?": showShortcuts,
  };

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || typing(event)) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;
    var action = Object.prototype.hasOwnProperty.call(actions, event.key) ? actions[event.key] : null;
    if (action) { event.preventDefault(); action(); }
  });

  var hintLink = document.querySelector("a.shortcuts-hint");
  if (hintLink) hintLink.addEventListener("click", function (event) { event.preventDefault(); showShortcuts(); });
})();
