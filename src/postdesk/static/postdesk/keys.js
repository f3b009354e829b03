// Keyboard shortcuts for people who live in the queue (a static file: the CSP
// allows no inline script).  Never active while typing in a field.
//   /       search            j / k   next / previous request in a queue page
//   Enter   open the selected request      t   take the open request
//   g then g / m / a   General, Mine, All
// On a request page (the second part of this file): r reply, n note, c close, a assign,
// j / k next / previous request of the queue one came from (on across its pages), u back to
// it, ? all shortcuts.
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
// requests (in order, as shown, with its URL and page number) in sessionStorage when it
// loads and when it is left (live.js may have refreshed the rows by then).  Why not
// ?from=<queue> on every link: sessionStorage is per tab, so two tabs on two queues each
// keep their own list; no link or URL (search results, saved views, bulk pages, the
// customer panel) has to carry anything; and a request opened from elsewhere simply has
// no queue.  Past the end of the remembered page, j / k ask the queue's URL for the next
// or previous page's numbers (?numbers=1&page=N: same filters, sort and search) and carry
// on there; that page becomes the remembered one.
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

  function remember(queue) {
    try {
      sessionStorage.setItem(KEY, JSON.stringify(queue));
    } catch (e) { /* storage full or disabled: j / k just do nothing */ }
  }

  function rememberQueue() {
    var table = document.querySelector("table.requests");
    if (!table) return;
    var page = parseInt(table.getAttribute("data-page") || "", 10);  // only a queue page's table has one
    remember({ url: window.location.pathname + window.location.search, items: requestLinks(), page: page > 0 ? page : null });
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

  var LAST = "End of the queue: this was its last request.";
  var FIRST = "Start of the queue: this was its first request.";

  // The queue's URL for page `page` (no page parameter for the first, as the queue links have it).
  function pageUrl(queue, page, extra) {
    var url = new URL(queue.url, window.location.href);
    ["page", "live", "since", "numbers"].forEach(function (name) { url.searchParams.delete(name); });
    if (page > 1) url.searchParams.set("page", String(page));
    Object.keys(extra || {}).forEach(function (name) { url.searchParams.set(name, extra[name]); });
    return url.pathname + url.search;
  }

  // The page `by` pages away from the remembered one (0: that page as it is now), fresh from
  // the server, or null when there is none (a page out of range comes back as the last one:
  // its own number says so).
  function fetchPage(queue, by) {
    var wanted = queue.page + by;
    if (wanted < 1) return Promise.resolve(null);
    return fetch(pageUrl(queue, wanted, { numbers: "1" }), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(new Error(String(response.status))); })
      .then(function (data) { return data.page === wanted && Array.isArray(data.links) ? data : null; });
  }

  // The first (j) or last (k) of `links` not yet on the remembered page: one already passed
  // must not come round again (no loop).  Requests that left the queue are simply not there.
  function landing(links, passed, by) {
    var fresh = links.filter(function (path) { return passed.indexOf(path) < 0 && path !== window.location.pathname; });
    return fresh.length ? fresh[by > 0 ? 0 : fresh.length - 1] : null;
  }

  // What moved onto the remembered page since it was shown, beyond this request: rows shift
  // back a page as requests are taken or closed (the usual way through General), and forward
  // as new ones arrive.  The anchor is the nearest remembered request, from here back (j) or
  // forward (k), still on the fresh page; when none is (all were taken), everything on the
  // fresh page is ahead for j.
  function movedOnto(fresh, passed, by) {
    var anchor = -1;
    for (var i = passed.indexOf(window.location.pathname); i >= 0 && i < passed.length && anchor < 0; i -= by) {
      anchor = fresh.links.indexOf(passed[i]);
    }
    if (anchor < 0) return by > 0 ? landing(fresh.links, passed, by) : null;
    return landing(by > 0 ? fresh.links.slice(anchor + 1) : fresh.links.slice(0, anchor), passed, by);
  }

  function goTo(queue, data, next) {
    remember({ url: pageUrl(queue, data.page), items: data.links, page: data.page });
    window.location.href = next;
  }

  var turning = false;  // one page turn at a time: j held down must not fetch once per key repeat
  window.addEventListener("pageshow", function () { turning = false; });  // back to this page from the history

  // Past the end (j) or the start (k) of the remembered page: first what moved onto it, then
  // the neighbouring page, with the same filters, sort and search (the remembered URL).
  function turnPage(queue, by) {
    if (turning) return;
    turning = true;
    function end() { turning = false; say(by > 0 ? LAST : FIRST); }
    fetchPage(queue, 0).then(function (same) {
      var next = same && movedOnto(same, queue.items, by);
      if (next) return goTo(queue, same, next);
      if (same && !(by > 0 ? same.has_next : same.has_previous)) return end();
      return fetchPage(queue, by).then(function (data) {
        var next = data && landing(data.links, queue.items, by);
        if (next) goTo(queue, data, next); else end();
      });
    }).catch(function () {
      turning = false;
      say("The queue's " + (by > 0 ? "next" : "previous") + " page did not load; try again.");
    });
  }

  function step(by) {
    var queue = rememberedQueue();
    var at = queue ? queue.items.indexOf(window.location.pathname) : -1;
    if (at < 0) { say("j and k follow a queue: open this request from a queue first."); return; }
    var next = queue.items[at + by];
    if (next) window.location.href = next;
    else if (queue.page) turnPage(queue, by);
    else say(by > 0 ? LAST : FIRST);  // a list that has no pages (a customer's requests)
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
