// The course site: the track switch of the twin view, and copy buttons on code cells.
// No network, no libraries: it works opened from file:// and from any static host.
(function () {
  "use strict";
  var root = document.documentElement;

  function showTrack(track) {
    if (track === "pytorch" || track === "tensorflow") root.dataset.track = track;
    else delete root.dataset.track;
    try {
      if (root.dataset.track) localStorage.setItem("course-track", track);
      else localStorage.removeItem("course-track");
    } catch (e) { /* storage may be off for file:// pages */ }
    document.querySelectorAll(".track-switch button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.show === (root.dataset.track || "both")));
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = document.execCommand("copy");
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy refused"));
    });
  }

  function addCopyButtons() {
    document.querySelectorAll(".jp-CodeCell .jp-InputArea-editor").forEach(function (editor) {
      var pre = editor.querySelector("pre");
      if (!pre || editor.querySelector(".copy-button")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy this code");
      button.addEventListener("click", function () {
        copyText(pre.textContent.replace(/\n$/, "")).then(function () {
          button.textContent = "Copied";
          button.dataset.copied = "true";
        }, function () {
          button.textContent = "Select and copy by hand";
        });
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
      editor.appendChild(button);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".track-switch button").forEach(function (b) {
      b.addEventListener("click", function () { showTrack(b.dataset.show); });
    });
    showTrack(root.dataset.track || "both");
    addCopyButtons();
    var q = new URLSearchParams(location.search).get("q");
    document.querySelectorAll(".site-search input").forEach(function (input) { if (q) input.value = q; });
  });
}());
