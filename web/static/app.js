// livingmeta web: single-key screening. Our own code, no library. Works without it (plain buttons).
(function () {
  "use strict";
  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function submitDecision(form, decision, reason) {
    document.getElementById("reason-value").value = reason || "";
    var btn = document.getElementById(decision === "exclude" ? "btn-exclude-submit" : "btn-" + decision);
    if (form.dataset.sent) { return; }  // one decision per page: a second key press sends nothing
    form.dataset.sent = "1";
    form.requestSubmit(btn);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("decide");
    var reasons = document.getElementById("reasons");
    var excludeBtn = document.getElementById("btn-exclude");
    var other = document.getElementById("reason-other");
    var required = excludeBtn && excludeBtn.dataset.required === "yes";
    var choosing = false;
    function openReasons() {
      if (!reasons) { return; }
      var choices = reasons.querySelectorAll("button.reason");
      if (!choices.length && !required) { submitDecision(form, "exclude", ""); return; }
      reasons.hidden = false;
      choosing = true;
      if (!choices.length && other) { other.focus(); }
    }
    if (excludeBtn) { excludeBtn.addEventListener("click", openReasons); }
    if (reasons) {
      reasons.addEventListener("click", function (ev) {
        var b = ev.target.closest("button.reason");
        if (b) { submitDecision(form, "exclude", b.dataset.reason); }
      });
    }
    if (other) {
      other.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") {
          ev.preventDefault();
          if (other.value.trim() || !required) { submitDecision(form, "exclude", other.value.trim()); }
        } else if (ev.key === "Escape") { other.blur(); }
      });
    }
    document.addEventListener("keydown", function (ev) {
      if (typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
      var k = ev.key.toLowerCase();
      if (choosing) {
        var b = reasons.querySelector('button.reason[data-key="' + k + '"]');
        if (b) { ev.preventDefault(); submitDecision(form, "exclude", b.dataset.reason); return; }
        if (k === "escape") { reasons.hidden = true; choosing = false; return; }
        if (k === "o" && other) { ev.preventDefault(); other.focus(); return; }
      }
      if (form && k === "i") { ev.preventDefault(); submitDecision(form, "include", ""); }
      else if (form && k === "m") { ev.preventDefault(); submitDecision(form, "maybe", ""); }
      else if (form && k === "e") { ev.preventDefault(); openReasons(); }
      else if (k === "u") { var u = document.getElementById("undo"); if (u && !u.querySelector("button").disabled) { ev.preventDefault(); u.requestSubmit(); } }
      else if (k === "s") { var s = document.getElementById("skip"); if (s) { ev.preventDefault(); s.requestSubmit(); } }
    });
  });
})();
