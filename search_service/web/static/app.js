/* Progressive enhancement for the search pages; everything works without it. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var base = (function (src) {
    var match = /^(.*)\/static\/app\.js(?:\?.*)?$/.exec(src || "");
    return match ? match[1] : "";
  })(document.currentScript && document.currentScript.src);

  // Search analytics (docs/ANALYTICS.md): a click on a result is reported with sendBeacon,
  // which neither waits nor delays the navigation. Query, article id and rank; nothing personal.
  function trackResultClicks(list) {
    if (!navigator.sendBeacon || typeof URLSearchParams !== "function") return;
    var params = new URLSearchParams(location.search);
    var channel = params.get("ref") === "widget" ? "widget" : "page";
    var clicked = false;
    function report(event) {
      if (event.type === "auxclick" && event.button !== 1) return;  // middle button: new tab
      var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
      var item = link && link.closest("li.hit");
      if (!item || !list.contains(item)) return;
      var title = item.querySelector(".hit-title a");
      if (!title) return;
      var url = new URL(title.href, location.href);
      var id = /\/doc\/([^\/]+)$/.exec(url.pathname);
      var q = url.searchParams.get("q");
      if (!id || !q) return;
      var items = list.querySelectorAll("li.hit");
      var rank = (list.start || 1) + Array.prototype.indexOf.call(items, item);
      try {
        var body = new URLSearchParams();
        body.append("q", q);
        body.append("id", decodeURIComponent(id[1]));
        body.append("rank", String(rank));
        body.append("channel", channel);
        body.append("first", clicked ? "0" : "1");
        navigator.sendBeacon(base + "/api/click", body);
        clicked = true;
      } catch (e) {
        // analytics never get in the reader's way
      }
    }
    list.addEventListener("click", report);
    list.addEventListener("auxclick", report);
  }

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
    var hits = document.querySelector("ol.hits");
    if (hits) trackResultClicks(hits);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
