// Reading a request: each message's HTML frame sized to its content.
//
// The frame is sandboxed with allow-same-origin but never allow-scripts (see
// web/mailframe.py): nothing runs inside it, and this script, on our own page, can
// read its document's height. Very tall mails are capped, with a button that shows
// the whole message. Without this script the frame keeps its fixed CSS height.
(function () {
  "use strict";
  var CAP = 2400; // px: beyond this a mail is shown capped until "Show the whole message"

  function contentHeight(frame) {
    var doc;
    try { doc = frame.contentDocument; } catch (e) { return 0; }
    if (!doc || !doc.documentElement || !doc.body) return 0;
    // The root box holds the body and its margins; body.scrollHeight catches overflowing content.
    var root = doc.documentElement.getBoundingClientRect().height;
    var style = doc.defaultView ? doc.defaultView.getComputedStyle(doc.body) : null;
    var margins = style ? parseFloat(style.marginTop) + parseFloat(style.marginBottom) : 0;
    return Math.ceil(Math.max(root, doc.body.scrollHeight + margins));
  }

  function fit(frame) {
    var height = contentHeight(frame);
    if (!height) return;
    var expanded = frame.classList.contains("expanded");
    var capped = height > CAP && !expanded;
    frame.style.height = (capped ? CAP : height) + "px";
    frame.classList.add("fitted");
    var expand = frame.parentNode.querySelector(".frame-expand");
    if (expand) expand.hidden = !capped;
  }

  function watch(frame) {
    var refit = function () { fit(frame); };
    frame.addEventListener("load", function () {
      refit();
      var doc = frame.contentDocument;
      // Late images (lazy or slow ones) and fonts change the height after load.
      if (doc && window.ResizeObserver) new ResizeObserver(refit).observe(doc.body);
    });
    // Already loaded before this script ran (not the initial about:blank): fit now.
    var doc = frame.contentDocument;
    if (doc && doc.readyState === "complete" && doc.URL !== "about:blank") refit();
    var expand = frame.parentNode.querySelector(".frame-expand-button");
    if (expand) expand.addEventListener("click", function () { frame.classList.add("expanded"); refit(); });
  }

  function start() {
    var frames = document.querySelectorAll("iframe.message-html");
    Array.prototype.forEach.call(frames, watch);
    var pending = false;
    window.addEventListener("resize", function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; Array.prototype.forEach.call(frames, fit); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
