// The UI's own script: CSRF header on htmx requests, the barcode gun, drag-and-drop uploads, keyboard paging.
// Loaded with `defer`; no inline script anywhere (Content-Security-Policy: script-src 'self').
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');

  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf && csrf.content) e.detail.headers["X-CSRF-Token"] = csrf.content;
  });

  // A dropped connection: say so where the person looks, and let them retry (uploads are idempotent on digest).
  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    box.innerHTML = "";
    var div = document.createElement("div");
    div.className = "alert " + (kind || "error");
    div.setAttribute("role", "alert");
    div.textContent = text;
    box.appendChild(div);
  }
  document.addEventListener("htmx:sendError", function () {
    flash("网络连接中断，操作未完成。请检查网络后重试；已上传成功的文件不会重复保存。");
  });
  // After any answer (or none), empty the form's file inputs: choosing the same file again to retry must fire
  // `change` once more (the browser fires it only when the selection differs).
  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    if (!elt || !elt.querySelectorAll) return;
    var inputs = elt.querySelectorAll("input[type=file][data-autosubmit]");
    for (var i = 0; i < inputs.length; i++) inputs[i].value = "";
  });
  document.addEventListener("htmx:timeout", function () {
    flash("服务器响应超时，操作可能未完成。请刷新页面查看结果后再重试。");
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var box = document.getElementById("flash");
    if (box && e.detail.elt && e.detail.elt.closest && !e.detail.elt.closest("[data-keep-flash]")) box.innerHTML = "";
  });

  // Barcode gun (keyboard wedge): characters arrive within a few ms and end with Enter. Typed outside any field,
  // they open that serial's case; F2 (or /) puts the cursor in the serial field.
  var buffer = "", last = 0;
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  document.addEventListener("keydown", function (e) {
    if (e.key === "F2" || (e.key === "/" && !typing(document.activeElement))) {
      var field = document.querySelector("[data-barcode-target]");
      if (field) { e.preventDefault(); field.focus(); field.select(); }
      return;
    }
    if (typing(document.activeElement) || e.ctrlKey || e.altKey || e.metaKey) return;
    var now = Date.now();
    if (now - last > 80) buffer = "";
    last = now;
    if (e.key === "Enter") {
      if (buffer.length >= 6) { e.preventDefault(); window.location.href = "/ui/go?serial=" + encodeURIComponent(buffer); }
      buffer = "";
    } else if (e.key.length === 1) {
      buffer += e.key;
    }
    // page viewer: arrows follow the previous/next links
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      var link = document.querySelector(e.key === "ArrowRight" ? "a[rel=next][data-key-nav]" : "a[rel=prev][data-key-nav]");
      if (link) { e.preventDefault(); link.click(); }
    }
  });

  // Drag-and-drop onto a materials row: the files go into that row's file input and its form is submitted.
  function zoneOf(e) { return e.target.closest ? e.target.closest(".dropzone") : null; }
  document.addEventListener("dragover", function (e) {
    var zone = zoneOf(e);
    if (!zone) return;
    e.preventDefault();
    zone.classList.add("over");
  });
  document.addEventListener("dragleave", function (e) {
    var zone = zoneOf(e);
    if (zone && !zone.contains(e.relatedTarget)) zone.classList.remove("over");
  });
  document.addEventListener("drop", function (e) {
    var zone = zoneOf(e);
    if (!zone) return;
    e.preventDefault();
    zone.classList.remove("over");
    var input = zone.querySelector("input[type=file]");
    if (!input || !e.dataTransfer || !e.dataTransfer.files.length) return;
    input.files = e.dataTransfer.files;
    input.form.requestSubmit();
  });
  // Choosing files submits at once: one step fewer at the counter.
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (input.matches && input.matches("input[type=file][data-autosubmit]") && input.files.length) input.form.requestSubmit();
  });
  // 受理: a filter box narrows a long <select> (the business types) to the options whose text contains it.
  document.addEventListener("input", function (e) {
    var box = e.target;
    if (!box.getAttribute || !box.getAttribute("data-filter-for")) return;
    var select = document.getElementById(box.getAttribute("data-filter-for"));
    if (!select) return;
    var words = box.value.trim().toLowerCase(), shown = [], i, j;
    var groups = select.getElementsByTagName("optgroup");
    for (i = 0; i < select.options.length; i++) {
      var opt = select.options[i];
      var hit = !opt.value || !words || opt.text.toLowerCase().indexOf(words) >= 0 ||
        (opt.parentNode.label || "").toLowerCase().indexOf(words) >= 0;
      opt.hidden = !hit;
      if (hit && opt.value) shown.push(opt);
    }
    for (j = 0; j < groups.length; j++) {
      var any = false;
      for (i = 0; i < groups[j].children.length; i++) if (!groups[j].children[i].hidden) any = true;
      groups[j].hidden = !any;
    }
    if (shown.length === 1) select.value = shown[0].value;
  });
  // Live field checks answer a message; the field says whether it is valid (aria-invalid) to screen readers too.
  document.addEventListener("htmx:afterSwap", function (e) {
    var field = e.detail.requestConfig && e.detail.requestConfig.elt;
    if (!field || !field.hasAttribute || !field.hasAttribute("data-validate")) return;
    var msg = document.getElementById("msg-" + field.id);
    if (!msg) return;
    if (msg.getAttribute("data-invalid") === "true") field.setAttribute("aria-invalid", "true");
    else field.removeAttribute("aria-invalid");
  });
  // 扫描室: the barcode gun ends the serial with Enter; that loads the case's materials instead of submitting,
  // and the material select then takes the focus.
  document.addEventListener("keydown", function (e) {
    var el = e.target;
    if (e.key !== "Enter" || !el.matches || !el.matches("input[data-serial-lookup]")) return;
    e.preventDefault();
    if (window.htmx) window.htmx.trigger(el, "lookup");
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var box = e.detail.target;
    if (!box || !box.classList || !box.classList.contains("scan-materials")) return;
    var select = box.querySelector("select");
    if (select) select.focus();
  });
})();

// ===== console: search and item page =====
// The item page's viewer: the page image is asked at the viewer's own width (server-rendered, steps of
// data-widths so the cache is shared), zoom (+ / - / 0) asks a wider image, rotate (R) turns the view only.
(function () {
  "use strict";
  var zoom = 1, turn = 0;
  function stage() { return document.querySelector(".viewer-stage"); }
  function fit() {
    var box = stage();
    if (!box) return;
    var img = box.querySelector("img.viewer-page");
    var steps = (box.getAttribute("data-widths") || "1000").split(",").map(Number);
    var want = Math.round(box.clientWidth * (window.devicePixelRatio || 1) * zoom);
    var width = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (steps[i] >= want) { width = steps[i]; break; } }
    var src = img.getAttribute("data-src").replace(/w=0$/, "w=" + width);
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    box.classList.toggle("zoomed", zoom > 1);
    img.setAttribute("width", String(Math.round(box.clientWidth * zoom)));
    img.className = "viewer-page" + (turn ? " rot-" + turn : "");
  }
  function act(what) {
    if (!stage()) return;
    if (what === "in") zoom = Math.min(zoom * 1.5, 4);
    else if (what === "out") zoom = Math.max(zoom / 1.5, 0.5);
    else if (what === "fit") zoom = 1;
    else if (what === "rotate") turn = (turn + 90) % 360;
    fit();
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("[data-viewer]") : null;
    if (b) { e.preventDefault(); act(b.getAttribute("data-viewer")); }
  });
  document.addEventListener("keydown", function (e) {
    var el = document.activeElement;
    if (!stage() || e.ctrlKey || e.altKey || e.metaKey) return;
    if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT")) return;
    var what = {"+": "in", "=": "in", "-": "out", "0": "fit", "r": "rotate", "R": "rotate"}[e.key];
    if (what) { e.preventDefault(); act(what); }
  });
  document.addEventListener("DOMContentLoaded", fit);
  document.addEventListener("htmx:afterSettle", fit);
  window.addEventListener("resize", fit);
})();
