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

  // ---- controls always match the URL -------------------------------------------------
  // Chrome restores form state on Back (and the back/forward cache keeps the DOM as it was
  // left, box ticked): set every control from the address the page shows.
  function syncControlsWithUrl(restored) {
    if (typeof URLSearchParams !== "function") return;
    var params = new URLSearchParams(location.search);
    var categories = params.getAll("category");
    var boxes = document.querySelectorAll("form[data-autosubmit] input[type=checkbox][name=category]");
    Array.prototype.forEach.call(boxes, function (box) {
      box.checked = categories.indexOf(box.value) !== -1;
    });
    ["date_from", "date_to"].forEach(function (name) {
      var input = document.querySelector("form[data-date-form] input[name=" + name + "]");
      if (input) input.value = params.get(name) || "";
    });
    var q = document.querySelector("input[data-own-search-box]");
    // The search box too, when the page comes back from the cache (typed text left unsent).
    if (restored && q && document.querySelector(".page-results")) q.value = params.get("q") || "";
    Array.prototype.forEach.call(document.querySelectorAll(".is-loading"), function (form) {
      form.classList.remove("is-loading");
    });
  }

  // ---- filters on a phone: a "筛选 (n)" button at the top opens them --------------------
  var STATE_KEY = "search-service:filter-state";

  function filtersPanel() {
    return document.getElementById("filters");
  }

  function setFiltersOpen(toggle, open) {
    var panel = filtersPanel();
    if (!panel) return;
    panel.classList.toggle("is-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function initFiltersToggle() {
    var toggle = document.querySelector("[data-filters-toggle]");
    if (!toggle) return null;
    if (!filtersPanel()) {
      toggle.hidden = true;  // nothing to filter by on this page
      return null;
    }
    toggle.setAttribute("role", "button");
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      var open = toggle.getAttribute("aria-expanded") !== "true";
      setFiltersOpen(toggle, open);
      if (open) {
        var first = filtersPanel().querySelector("input, a[href], button");
        if (first) first.focus({ preventScroll: true });
      }
    });
    toggle.addEventListener("keydown", function (event) {
      if (event.key === " ") {  // a button answers Space as well as Enter
        event.preventDefault();
        toggle.click();
      }
    });
    return toggle;
  }

  // After a filter change the page reloads: the reader should stay where they were, with
  // the filters still open and focus on the control they used (not on <body>).
  function controlKey(element) {
    if (!element) return null;
    if (element.name === "category" && element.type === "checkbox") return "category:" + element.value;
    var link = element.closest ? element.closest("a.facet-link") : null;
    if (link && link.dataset.month) return "month:" + link.dataset.month;
    if (link && link.dataset.year) return "year:" + link.dataset.year;
    if (element.closest && element.closest("form[data-date-form]")) return "dates";
    return null;
  }

  function findControl(key) {
    var kind = key.slice(0, key.indexOf(":") === -1 ? key.length : key.indexOf(":"));
    var value = key.slice(kind.length + 1);
    var candidates;
    if (kind === "category") {
      candidates = document.querySelectorAll("form[data-autosubmit] input[name=category]");
      for (var i = 0; i < candidates.length; i++) if (candidates[i].value === value) return candidates[i];
    } else if (kind === "month" || kind === "year") {
      candidates = document.querySelectorAll("a.facet-link[data-" + kind + "]");
      for (var j = 0; j < candidates.length; j++) if (candidates[j].dataset[kind] === value) return candidates[j];
    } else if (kind === "dates") {
      return document.querySelector("form[data-date-form] input[name=date_from]");
    }
    return null;
  }

  function rememberPlace(element, toggle) {
    try {
      var key = controlKey(element);
      if (!key || !window.sessionStorage) return;
      sessionStorage.setItem(STATE_KEY, JSON.stringify({
        key: key, y: window.pageYOffset, at: Date.now(), path: location.pathname,
        open: !!(toggle && toggle.getAttribute("aria-expanded") === "true")
      }));
    } catch (e) {
      // private mode without storage: the page still works, focus starts at the top
    }
  }

  function restorePlace(toggle) {
    var saved;
    try {
      if (!window.sessionStorage) return;
      saved = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
      sessionStorage.removeItem(STATE_KEY);
    } catch (e) {
      return;
    }
    if (!saved || saved.path !== location.pathname || Date.now() - saved.at > 30000) return;
    if (saved.open && toggle) setFiltersOpen(toggle, true);
    var control = findControl(saved.key) || (toggle && saved.open ? toggle : null);
    window.scrollTo(0, saved.y);
    if (control) control.focus({ preventScroll: true });
  }

  function init() {
    var toggle = initFiltersToggle();
    syncControlsWithUrl(false);
    // Ticking a category checkbox submits its GET form at once (the button is for no-JS).
    var forms = document.querySelectorAll("form[data-autosubmit]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("change", function (event) {
        var target = event.target;
        if (!target || target.type !== "checkbox") return;
        rememberPlace(target, toggle);
        form.classList.add("is-loading");
        if (typeof form.requestSubmit === "function") form.requestSubmit();
        else form.submit();
      });
    });
    var dateForm = document.querySelector("form[data-date-form]");
    if (dateForm) dateForm.addEventListener("submit", function () {
      rememberPlace(dateForm.querySelector("input[name=date_from]"), toggle);
    });
    var panel = filtersPanel();
    if (panel) panel.addEventListener("click", function (event) {
      var link = event.target && event.target.closest ? event.target.closest("a.facet-link") : null;
      if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey && event.button === 0) rememberPlace(link, toggle);
    });
    restorePlace(toggle);
    // Suggestions on the page's own search box (same origin as widget.js).
    var box = document.querySelector("input[data-own-search-box]");
    if (box && window.SearchBox) window.SearchBox.attach(box);
    var hits = document.querySelector("ol.hits");
    if (hits) trackResultClicks(hits);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
  // Back/Forward from the cache: the DOM is as it was left (a box ticked just before leaving).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) syncControlsWithUrl(true);
  });
})();
