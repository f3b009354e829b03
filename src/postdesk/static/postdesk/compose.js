// The answering part of a request page (_compose.html).  Everything here is a
// convenience: without it both forms are shown one above the other and work.
//   - Reply and Note tabs (#tab-reply, #tab-note; the r and n keys click them)
//   - drafts saved a moment after typing stops, "Draft saved 12:03"
//   - the canned reply picker: a search box and a list filtered as one types
//   - attachments dropped on the form, listed, removable, 25 MB in all checked before sending
(function () {
  "use strict";
  var SAVE_AFTER_MS = 800;

  function csrf(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  // --- tabs -------------------------------------------------------------------
  function tabs(section) {
    var panes = { reply: document.getElementById("reply-pane"), note: document.getElementById("note-pane") };
    var links = { reply: document.getElementById("tab-reply"), note: document.getElementById("tab-note") };
    function show(kind, focus) {
      Object.keys(panes).forEach(function (k) {
        panes[k].hidden = k !== kind;
        links[k].setAttribute("aria-selected", k === kind ? "true" : "false");
        links[k].classList.toggle("active", k === kind);
      });
      section.setAttribute("data-active", kind);
      if (focus) panes[kind].querySelector("textarea").focus();
    }
    Object.keys(links).forEach(function (kind) {
      links[kind].addEventListener("click", function (event) { event.preventDefault(); show(kind, true); });
    });
    section.classList.add("tabbed");
    var fromHash = /^#(reply|note)-pane$/.exec(window.location.hash);
    show(fromHash ? fromHash[1] : (section.getAttribute("data-active") || "reply"), false);
  }

  // --- drafts -----------------------------------------------------------------
  function drafts(section, form) {
    var url = section.getAttribute("data-draft-url");
    var hint = section.querySelector(".draft-saved");
    var timer = null, sending = false;
    function save() {
      timer = null;
      if (sending) return;  // the form is being sent: its draft is deleted there, not saved again
      var body = new FormData();
      body.append("kind", form.getAttribute("data-kind"));
      body.append("text", form.querySelector("textarea[name=text]").value);
      var cc = form.querySelector("input[name=cc]");
      if (cc) body.append("cc", cc.value);
      fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRFToken": csrf(form), Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && hint) hint.textContent = data.saved ? "Draft saved " + data.saved : ""; })
        .catch(function () { /* offline a moment: the next keystroke tries again */ });
    }
    form.addEventListener("input", function (event) {
      if (event.target.type === "file" || event.target.type === "search") return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(save, SAVE_AFTER_MS);
    });
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;  // refused before sending (too large): keep saving
      sending = true;
      if (timer) clearTimeout(timer);
    });
  }

  // --- canned replies ---------------------------------------------------------
  function insertAt(box, text) {
    var start = box.selectionStart, end = box.selectionEnd, value = box.value;
    if (typeof start !== "number" || document.activeElement !== box && start === 0 && end === 0) start = end = value.length;
    var before = value.slice(0, start), after = value.slice(end);
    var glue = before && !/\n$/.test(before) ? "\n\n" : "";
    box.value = before + glue + text + after;
    box.selectionStart = box.selectionEnd = (before + glue + text).length;
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));  // saved as a draft, like typing
  }

  function picker(form) {
    var root = form.querySelector(".canned-picker");
    if (!root) return;
    var select = root.querySelector("select"), search = root.querySelector(".canned-search");
    var list = root.querySelector(".canned-matches"), box = form.querySelector("#reply-text");
    var options = Array.prototype.map.call(select.options, function (o) {
      return { title: o.textContent, text: o.getAttribute("data-text") };
    });
    select.hidden = true;
    var insert = root.querySelector(".canned-insert");
    insert.hidden = true;
    insert.disabled = true;  // the form's first button: Enter in the Cc box must not press it
    root.querySelector("label").setAttribute("for", "canned-search");
    search.hidden = false;
    select.disabled = true;  // the no-JS field stays out of the reply's POST
    function render() {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      list.textContent = "";
      options.filter(function (o) {
        var hay = (o.title + " " + o.text).toLowerCase();
        return words.every(function (w) { return hay.indexOf(w) >= 0; });
      }).forEach(function (o) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "canned-option";
        button.textContent = o.title;
        button.addEventListener("click", function () {
          insertAt(box, o.text);
          search.value = "";
          list.hidden = true;
        });
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = !list.children.length;
    }
    search.addEventListener("input", render);
    search.addEventListener("focus", render);
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {  // Enter takes the first match rather than sending the form
        event.preventDefault();
        var first = list.querySelector("button");
        if (first) first.click();
      } else if (event.key === "Escape") {
        list.hidden = true;
      }
    });
  }

  // --- attachments --------------------------------------------------------------
  function megabytes(bytes) {
    return bytes < 1048576 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : (bytes / 1048576).toFixed(1) + " MB";
  }

  function dropzone(form) {
    var zone = form.querySelector(".dropzone");
    var input = zone.querySelector("input[type=file]"), list = zone.querySelector(".chosen-files");
    var problem = zone.querySelector(".files-error"), limit = parseInt(zone.getAttribute("data-limit"), 10);
    var chosen = [];
    function sync() {
      var transfer = new DataTransfer();
      chosen.forEach(function (f) { transfer.items.add(f); });
      input.files = transfer.files;
      list.textContent = "";
      chosen.forEach(function (f, i) {
        var item = document.createElement("li");
        item.appendChild(document.createTextNode(f.name + " (" + megabytes(f.size) + ") "));
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "file-remove";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + f.name);
        remove.addEventListener("click", function () { chosen.splice(i, 1); sync(); });
        item.appendChild(remove);
        list.appendChild(item);
      });
      problem.hidden = total() <= limit;
      problem.textContent = problem.hidden ? "" : "The attachments are " + megabytes(total()) + " together; most mail servers refuse more than 25 MB.";
    }
    function total() { return chosen.reduce(function (sum, f) { return sum + f.size; }, 0); }
    function add(files) { Array.prototype.forEach.call(files, function (f) { chosen.push(f); }); sync(); }
    input.addEventListener("change", function () {
      // The picker replaces the input's files: keep the earlier ones, then the new.
      var picked = Array.prototype.slice.call(input.files);
      add(picked.filter(function (f) { return chosen.indexOf(f) < 0; }));
    });
    ["dragenter", "dragover"].forEach(function (name) {
      form.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    form.addEventListener("dragleave", function (event) {
      if (!form.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length) add(event.dataTransfer.files);
    });
    form.addEventListener("submit", function (event) {
      if (total() > limit) { event.preventDefault(); problem.hidden = false; problem.scrollIntoView({ block: "nearest" }); }
    }, true);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector("section.compose");
    if (!section) return;
    tabs(section);
    section.querySelectorAll("form[data-kind]").forEach(function (form) { drafts(section, form); });
    var replyForm = section.querySelector("form.reply-form");
    picker(replyForm);
    dropzone(replyForm);
  });
})();
