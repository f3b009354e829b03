// Live pages by short polling (postdesk/web/live.py says why not server-sent events).
// The queue: its rows and the top bar's counts.  A request: what changed since the
// page was rendered (a banner with "Show"), its status and assignee, who else is
// there ("anna is viewing", "anna is replying").  Polls only while the tab is visible.
(function () {
  "use strict";
  var POLL_MS = 1500;      // changes show within 2 s
  var BEAT_MS = 10000;     // presence heartbeat (rows expire after 30 s on the server)
  var TYPING_MS = 15000;   // "replying" while the reply box was typed in this recently

  function poller(step, immediately) {
    var timer = null, busy = false;
    function tick() {
      timer = null;
      if (document.hidden || busy) return;
      busy = true;
      step().catch(function () {}).then(function () { busy = false; schedule(); });
    }
    function schedule() {
      if (!timer && !document.hidden) timer = setTimeout(tick, POLL_MS);
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) return;
      if (timer) { clearTimeout(timer); timer = null; }
      tick();
    });
    if (immediately) tick(); else schedule();
  }

  function json(response) {
    if (!response.ok) throw new Error("poll " + response.status);
    return response.json();
  }

  function setCounts(counts) {
    document.querySelectorAll("[data-count]").forEach(function (el) {
      var key = el.getAttribute("data-count");
      if (counts && Object.prototype.hasOwnProperty.call(counts, key)) el.textContent = counts[key];
    });
  }

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // --- the queue --------------------------------------------------------------

  function liveQueue(list) {
    poller(function () {
      var url = list.getAttribute("data-live-url") + "&since=" + encodeURIComponent(list.getAttribute("data-stamp"));
      return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(json).then(function (data) {
        setCounts(data.counts);
        var count = document.querySelector(".queue-count");
        if (count) count.textContent = data.count;
        if (typeof data.html === "string" && data.stamp !== list.getAttribute("data-stamp")) {
          list.innerHTML = data.html;
          list.setAttribute("data-stamp", data.stamp);
        }
      });
    }, false);
  }

  // --- a request --------------------------------------------------------------

  // By the request's own address: a refused form's page is at /requests/N/reply/, /close/, ...
  function draftKey(article) { return "postdesk-draft:" + article.getAttribute("data-url"); }

  function keepDraft(article, box) {
    if (box && box.value) sessionStorage.setItem(draftKey(article), box.value);
  }

  function restoreDraft(article, box) {
    var kept = sessionStorage.getItem(draftKey(article));
    sessionStorage.removeItem(draftKey(article));
    if (box && kept && !box.value) box.value = kept;
  }

  function showState(article, data) {
    var badge = article.querySelector(".request-head .badge");
    if (badge) { badge.className = "badge badge-" + data.status; badge.textContent = data.status_label; }
    var assigned = article.querySelector(".request-head .assigned");
    if (assigned) {
      assigned.textContent = data.assignee ? "assigned to " : "unassigned";
      if (data.assignee) { var who = document.createElement("strong"); who.textContent = data.assignee; assigned.appendChild(who); }
    }
    var here = article.querySelector(".presence");
    var names = (data.presence || []).map(function (p) { return p.name + (p.replying ? " is replying" : " is viewing"); });
    here.textContent = names.join(" · ");
    here.hidden = names.length === 0;
    var banner = article.querySelector(".live-banner");
    if (data.changes && data.changes.length) {
      banner.querySelector(".live-what").textContent =
        (data.customer ? "New message from the customer. " : "This request changed. ") + "Since you opened it: " + data.changes.join("; ") + ".";
      banner.hidden = false;
    }
  }

  function liveRequest(article) {
    var url = article.getAttribute("data-live-url");
    var box = document.getElementById("reply-text");
    var lastKey = 0, lastBeat = 0, wasReplying = false, poll;
    restoreDraft(article, box);
    function replying() { return Date.now() - lastKey < TYPING_MS; }
    var show = article.querySelector(".live-show");
    show.addEventListener("click", function () { keepDraft(article, box); });  // the reload keeps the draft
    show.setAttribute("href", article.getAttribute("data-url"));
    // Take, Close, ... leave the page: the reply being typed comes back on the next one.
    document.querySelectorAll("section.actions form, .confirm form").forEach(function (form) {
      form.addEventListener("submit", function () { keepDraft(article, box); });
    });
    poll = function () {
      var body = new FormData();
      ["seen_message", "seen_assignee", "seen_status"].forEach(function (name) {
        body.append(name, article.getAttribute("data-" + name.replace("_", "")));
      });
      var now = replying();
      if (now !== wasReplying || Date.now() - lastBeat >= BEAT_MS) {
        body.append("beat", "1");
        body.append("replying", now ? "1" : "0");
        lastBeat = Date.now();
        wasReplying = now;
      }
      return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } })
        .then(json).then(function (data) { setCounts(data.counts); showState(article, data); });
    };
    if (box) box.addEventListener("input", function () { lastKey = Date.now(); });
    poller(poll, true);
    window.addEventListener("pagehide", function () {
      var body = new FormData();
      body.append("leave", "1");
      body.append("csrfmiddlewaretoken", csrf());
      navigator.sendBeacon(url, body);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector(".queue-list[data-live-url]");
    if (list) liveQueue(list);
    var article = document.querySelector("article.request[data-live-url]");
    if (article) liveRequest(article);
  });
})();
