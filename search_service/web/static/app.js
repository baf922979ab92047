/* Progressive enhancement for the search pages; everything works without it. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function init() {
    // Ticking a category checkbox submits its GET form at once (the button is for no-JS).
    var forms = document.querySelectorAll("form[data-autosubmit]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("change", function (event) {
        var target = event.target;
        if (!target || target.type !== "checkbox") return;
        form.classList.add("is-loading");
        if (typeof form.requestSubmit === "function") form.requestSubmit();
        else form.submit();
      });
    });
    // Suggestions on the page's own search box (same origin as widget.js).
    var box = document.querySelector("input[data-own-search-box]");
    if (box && window.SearchBox) window.SearchBox.attach(box);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
