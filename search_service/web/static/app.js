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

  // ---- controls always match the page ------------------------------------------------
  // Chrome restores form state on Back (and the back/forward cache keeps the DOM as it was
  // left, box ticked): set every control back to what the server rendered, which is what the
  // page shows (its URL's meaning: a backwards date range comes back the right way round).
  function syncControlsWithPage(restored) {
    var boxes = document.querySelectorAll("form[data-autosubmit] input[type=checkbox][name=category]");
    Array.prototype.forEach.call(boxes, function (box) {
      box.checked = box.defaultChecked;
    });
    var dates = document.querySelectorAll("form[data-date-form] input[type=date]");
    Array.prototype.forEach.call(dates, function (input) {
      input.value = input.defaultValue;
    });
    var q = document.querySelector("input[data-own-search-box]");
    // The search box too, when the page comes back from the cache (typed text left unsent).
    if (restored && q && document.querySelector(".page-results")) q.value = q.defaultValue;
    Array.prototype.forEach.call(document.querySelectorAll(".is-loading"), function (form) {
      form.classList.remove("is-loading");
    });
    if (filters) filters.update();
  }

  // ---- filters ------------------------------------------------------------------------
  // On a desktop the panel sits beside the results and a ticked box applies at once. On a
  // phone (the same width the CSS switches at) "筛选 (n)" opens it as a sheet over the page:
  // choices are gathered there and 「显示 N 条结果」 applies them together and shows the
  // results (the pattern of Algolia's and Pagefind's phone filters). Without JavaScript the
  // panel is plain GET forms and links after the results.
  var STATE_KEY = "search-service:filter-state";
  var narrow = window.matchMedia ? window.matchMedia("(max-width: 820px)") : null;
  var filters = null;

  function sheetMode() {
    return !!(narrow && narrow.matches);
  }

  function remember(state) {
    try {
      if (!window.sessionStorage) return;
      state.at = Date.now();
      state.path = location.pathname;
      sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
    } catch (e) {
      // private mode without storage: the page still works, focus starts at the top
    }
  }

  function recall() {
    try {
      if (!window.sessionStorage) return null;
      var saved = JSON.parse(sessionStorage.getItem(STATE_KEY) || "null");
      sessionStorage.removeItem(STATE_KEY);
      if (!saved || saved.path !== location.pathname || Date.now() - saved.at > 30000) return null;
      return saved;
    } catch (e) {
      return null;
    }
  }

  function Filters(panel, toggle) {
    this.panel = panel;
    this.toggle = toggle;
    this.sheet = panel.querySelector("[data-filters-sheet]") || panel;
    this.heading = panel.querySelector("#filters-heading");
    this.categoryForm = panel.querySelector("form[data-autosubmit]");
    this.dateForm = panel.querySelector("form[data-date-form]");
    this.show = panel.querySelector("[data-filters-show]");
    this.status = document.createElement("p");
    this.status.className = "visually-hidden";
    this.status.setAttribute("aria-live", "polite");
    this.sheet.appendChild(this.status);
    this.opened = null;  // the element focus returns to when the sheet closes
  }

  Filters.prototype.boxes = function () {
    return this.categoryForm ? this.categoryForm.querySelectorAll("input[type=checkbox][name=category]") : [];
  };

  Filters.prototype.dateInputs = function () {
    return this.dateForm ? this.dateForm.querySelectorAll("input[type=date]") : [];
  };

  Filters.prototype.datesChanged = function () {
    return Array.prototype.some.call(this.dateInputs(), function (input) {
      return input.value !== input.defaultValue;
    });
  };

  Filters.prototype.dirty = function () {
    return this.datesChanged() || Array.prototype.some.call(this.boxes(), function (box) {
      return box.checked !== box.defaultChecked;
    });
  };

  // How many results the choices find, or null when that cannot be known without a search.
  // Category counts are counted without the category filter and an article has one category,
  // so while the dates are unchanged the ticked counts add up to the exact total.
  Filters.prototype.count = function () {
    if (!this.dirty()) return parseInt(this.panel.getAttribute("data-total"), 10);
    if (this.datesChanged()) return null;
    var ticked = 0, all = 0, any = false;
    Array.prototype.forEach.call(this.boxes(), function (box) {
      var count = parseInt(box.getAttribute("data-count"), 10) || 0;
      all += count;
      if (box.checked) {
        ticked += count;
        any = true;
      }
    });
    return any ? ticked : all;
  };

  Filters.prototype.update = function () {
    var count = this.count();
    var label = count === null ? "显示结果" : "显示 " + count + " 条结果";
    if (this.show && this.show.textContent !== label) {
      this.show.textContent = label;
      if (this.isOpen()) this.status.textContent = count === null ? "" : "将显示 " + count + " 条结果";
    }
    this.panel.classList.toggle("is-dirty", this.dirty());
  };

  // The results page of the choices made: the page's other state (query, order, page size),
  // the ticked categories and the dates in the fields; page 1.
  Filters.prototype.url = function () {
    var form = this.categoryForm || this.dateForm;
    var action = form.getAttribute("action") || location.pathname;
    var first = [], rest = [], categories = [], dates = [];
    Array.prototype.forEach.call(form.querySelectorAll("input[type=hidden]"), function (input) {
      if (input.name === "q") first.push([input.name, input.value]);
      else if (input.name === "category") categories.push([input.name, input.value]);
      else if (input.name === "date_from" || input.name === "date_to") dates.push([input.name, input.value]);
      else rest.push([input.name, input.value]);
    });
    if (this.categoryForm) {
      categories = [];
      Array.prototype.forEach.call(this.boxes(), function (box) {
        if (box.checked) categories.push(["category", box.value]);
      });
    }
    if (this.dateForm) {
      dates = [];
      Array.prototype.forEach.call(this.dateInputs(), function (input) {
        if (input.value) dates.push([input.name, input.value]);
      });
    }
    var query = first.concat(categories, dates, rest).map(function (pair) {
      return encodeURIComponent(pair[0]) + "=" + encodeURIComponent(pair[1]);
    }).join("&");
    return action + (query ? "?" + query : "");
  };

  Filters.prototype.apply = function () {
    if (!this.dirty()) {
      this.close(false);
      focusResults();
      return;
    }
    remember({ applied: true });
    location.assign(this.url());
  };

  Filters.prototype.isOpen = function () {
    return this.panel.classList.contains("is-open");
  };

  // Everything but the sheet: out of reach of Tab and of screen readers while it is open.
  Filters.prototype.outside = function () {
    var selectors = [".skip-links", ".site-header", ".site-footer", "#results", "[data-filters-toggle]"];
    var out = [];
    selectors.forEach(function (selector) {
      var element = document.querySelector(selector);
      if (element) out.push(element);
    });
    return out;
  };

  Filters.prototype.open = function (from) {
    if (this.isOpen()) return;
    this.opened = from || this.toggle;
    this.panel.classList.add("is-open");
    this.toggle.setAttribute("aria-expanded", "true");
    this.sheet.setAttribute("role", "dialog");
    this.sheet.setAttribute("aria-modal", "true");
    this.sheet.setAttribute("aria-labelledby", "filters-heading");
    this.outside().forEach(function (element) {
      element.inert = true;
      element.setAttribute("inert", "");
    });
    document.documentElement.classList.add("filters-sheet-open");
    this.update();
    if (this.heading) this.heading.focus({ preventScroll: true });
  };

  // Closing without 「显示」 forgets the choices: the panel again shows what the page shows.
  Filters.prototype.close = function (giveFocusBack) {
    if (!this.isOpen()) return;
    this.panel.classList.remove("is-open");
    this.toggle.setAttribute("aria-expanded", "false");
    this.sheet.removeAttribute("role");
    this.sheet.removeAttribute("aria-modal");
    this.sheet.removeAttribute("aria-labelledby");
    this.outside().forEach(function (element) {
      element.inert = false;
      element.removeAttribute("inert");
    });
    document.documentElement.classList.remove("filters-sheet-open");
    if (giveFocusBack) {
      syncControlsWithPage(false);
      var back = this.opened && this.opened.offsetParent !== null ? this.opened : this.toggle;
      back.focus({ preventScroll: false });
    }
  };

  Filters.prototype.reset = function () {
    Array.prototype.forEach.call(this.boxes(), function (box) { box.checked = false; });
    Array.prototype.forEach.call(this.dateInputs(), function (input) { input.value = ""; });
    this.update();
  };

  Filters.prototype.init = function () {
    var self = this, toggle = this.toggle, panel = this.panel;
    toggle.setAttribute("role", "button");
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      if (self.isOpen()) self.close(true);
      else self.open(toggle);
    });
    toggle.addEventListener("keydown", function (event) {
      if (event.key === " ") {  // a button answers Space as well as Enter
        event.preventDefault();
        toggle.click();
      }
    });
    var skip = document.querySelector("[data-filters-skip]");
    if (skip) skip.addEventListener("click", function (event) {
      if (!sheetMode()) return;
      event.preventDefault();
      self.open(toggle);
    });
    var close = panel.querySelector("[data-filters-close]");
    if (close) close.addEventListener("click", function () { self.close(true); });
    if (this.show) this.show.addEventListener("click", function () { self.apply(); });
    var reset = panel.querySelector("[data-filters-reset]");
    if (reset) reset.addEventListener("click", function () { self.reset(); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && self.isOpen()) {
        event.preventDefault();
        self.close(true);
      }
    });

    // Ticking a category: on a desktop its GET form is sent at once (the button is for no-JS);
    // in the sheet the choice waits for 「显示 N 条结果」, whose count follows every tick.
    if (this.categoryForm) this.categoryForm.addEventListener("change", function (event) {
      var target = event.target;
      if (!target || target.type !== "checkbox") return;
      if (sheetMode()) {
        self.update();
        return;
      }
      remember({ key: controlKey(target), y: window.pageYOffset });
      self.categoryForm.classList.add("is-loading");
      if (typeof self.categoryForm.requestSubmit === "function") self.categoryForm.requestSubmit();
      else self.categoryForm.submit();
    });
    if (this.categoryForm) this.categoryForm.addEventListener("submit", function (event) {
      if (!sheetMode() && !self.datesChanged()) return;
      event.preventDefault();  // the dates typed meanwhile go along too
      self.apply();
    });
    if (this.dateForm) {
      this.dateForm.addEventListener("input", function () { self.update(); });
      this.dateForm.addEventListener("change", function () { self.update(); });
      this.dateForm.addEventListener("submit", function (event) {
        if (sheetMode()) {
          event.preventDefault();
          self.apply();
          return;
        }
        remember({ key: "dates", y: window.pageYOffset });
      });
    }
    // Year and month links: one tap applies at once, with the categories ticked in the sheet.
    panel.addEventListener("click", function (event) {
      var link = event.target && event.target.closest ? event.target.closest("a.facet-link") : null;
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      if (!sheetMode()) {
        remember({ key: controlKey(link), y: window.pageYOffset });
        return;
      }
      remember({ applied: true });
      if (!self.dirty() || !self.categoryForm || typeof URL !== "function") return;
      event.preventDefault();
      var target = new URL(link.href, location.href);
      target.searchParams.delete("category");
      Array.prototype.forEach.call(self.boxes(), function (box) {
        if (box.checked) target.searchParams.append("category", box.value);
      });
      location.assign(target.pathname + target.search);
    });
    if (narrow) {
      var onChange = function () {
        if (!sheetMode() && self.isOpen()) self.close(false);
        self.update();
      };
      if (narrow.addEventListener) narrow.addEventListener("change", onChange);
      else if (narrow.addListener) narrow.addListener(onChange);
    }
    this.update();
  };

  // 「更多」 under a long facet list: the values past the first few, shown or folded away.
  function initMoreButtons() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-more][aria-controls]"), function (button) {
      var list = document.getElementById(button.getAttribute("aria-controls"));
      if (!list) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        setExpanded(list, list.className.indexOf("is-expanded") === -1);
      });
    });
  }

  function setExpanded(list, expanded) {
    var button = document.querySelector("button[data-more][aria-controls=" + list.id + "]");
    list.classList.toggle("is-expanded", expanded);
    if (!button) return;
    button.setAttribute("aria-expanded", expanded ? "true" : "false");
    button.textContent = expanded ? "收起" : button.getAttribute("data-more");
  }

  function focusResults() {
    var heading = document.getElementById("results-heading");
    if (heading) heading.focus({ preventScroll: true });
  }

  // After a filter change on a desktop the page reloads: the reader should stay where they
  // were, with focus on the control they used (not on <body>).
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

  function restorePlace() {
    var saved = recall();
    if (!saved) return;
    if (saved.applied || sheetMode()) {
      // Filters applied from the phone's sheet: the page opens on the results, focus on their heading.
      focusResults();
      return;
    }
    var control = saved.key ? findControl(saved.key) : null;
    var folded = control && control.closest ? control.closest("li.is-more") : null;
    if (folded) setExpanded(folded.parentNode, true);  // a value from under 「更多」 stays in view
    window.scrollTo(0, saved.y || 0);
    if (control) control.focus({ preventScroll: true });
  }

  function init() {
    initMoreButtons();
    var toggle = document.querySelector("[data-filters-toggle]");
    var panel = document.getElementById("filters");
    if (toggle && !panel) toggle.hidden = true;  // nothing to filter by on this page
    if (toggle && panel) {
      filters = new Filters(panel, toggle);
      filters.init();
    }
    syncControlsWithPage(false);
    restorePlace();
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
    if (!event.persisted) return;
    if (filters) filters.close(false);
    syncControlsWithPage(true);
  });
})();
