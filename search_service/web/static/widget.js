/*
 * Search-box suggestions for any <input data-search-box> (or SearchBox.attach(input, options)) from
 * /api/suggest of the host widget.js came from (CORS), as docs/SEARCH_BOX.md describes.
 * WAI-ARIA combobox; no requests while an IME is composing; server text is never parsed as HTML.
 * Analytics (docs/ANALYTICS.md): a random per-page-load `sid`, chosen suggestions sent with
 * sendBeacon to /api/click, ref=widget on the results link. Nothing personal is sent.
 */
(function () {
  "use strict";
  if (window.SearchBox && window.SearchBox.attach) return;

  var DEFAULTS = {        // docs/SEARCH_BOX.md
    endpoint: null,      // where widget.js came from
    limit: 8,
    delay: 150,          // debounce, ms
    minLength: 1,
    searchPath: "/search",
    stylesheet: true,    // link the endpoint's widget.css
    openOriginal: false, // open the article on the site itself (its url), not /doc/<id>
    excerpt: false,      // a line of text under every title
    slashFocus: true,    // "/" outside a text field focuses the box
    hot: true,           // the empty box, focused, lists the site's hot searches (GET /api/hot)
    onSelect: null       // function (suggestion, href) -> false to stop navigation
  };
  var slashBox = null;     // the box "/" focuses: the first one attached with slashFocus
  var CACHE_SIZE = 50;
  var counter = 0;
  var boxes = new WeakMap();
  var scriptBase = baseOf(document.currentScript && document.currentScript.src);

  function baseOf(src) {
    try {
      var url = new URL(src || location.href, location.href);
      var match = /^(.*)\/static\/widget\.js$/.exec(url.pathname);
      return url.origin + (src && match ? match[1] : "");
    } catch (e) {
      return "";
    }
  }

  function newSessionId() {
    var bytes = new Uint8Array(9), out = "";
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(bytes);
    else for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    for (var j = 0; j < bytes.length; j++) out += (bytes[j] + 256).toString(16).slice(1);
    return out;
  }

  // A click report that never delays navigation; a CORS-safelisted body needs no preflight.
  function sendClick(endpoint, fields) {
    try {
      if (!navigator.sendBeacon || typeof URLSearchParams !== "function") return;
      var body = new URLSearchParams();
      for (var key in fields) if (Object.prototype.hasOwnProperty.call(fields, key)) body.append(key, String(fields[key]));
      navigator.sendBeacon(endpoint + "/api/click", body);
    } catch (e) {
      // analytics never get in the reader's way
    }
  }

  function setAttrs(element, attributes) {
    for (var name in attributes) element.setAttribute(name, attributes[name]);
    return element;
  }

  function trimSlash(text) {
    return String(text || "").replace(/\/+$/, "");
  }

  var ENTITIES = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: "\u00a0" };

  function unescapeEntities(text) {
    return text.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,8});/g, function (whole, name) {
      if (name.charAt(0) === "#") {
        var hex = name.charAt(1) === "x" || name.charAt(1) === "X";
        var code = parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return Object.prototype.hasOwnProperty.call(ENTITIES, name) ? ENTITIES[name] : whole;
    });
  }

  // title_html: escaped text with <mark> around matches. Anything else tag-like stays text.
  function appendMarked(parent, markedHtml) {
    var parts = String(markedHtml).split(/(<mark>|<\/mark>)/);
    var inMark = false;
    for (var i = 0; i < parts.length; i++) {
      var part = parts[i];
      if (part === "<mark>") { inMark = true; continue; }
      if (part === "</mark>") { inMark = false; continue; }
      if (!part) continue;
      var text = document.createTextNode(unescapeEntities(part));
      (inMark ? parent.appendChild(document.createElement("mark")) : parent).appendChild(text);
    }
  }

  function ensureStylesheet(href) {
    var links = document.querySelectorAll("link[rel~='stylesheet']");
    // The service's own pages link it with a version (?v=…): that one counts too.
    for (var i = 0; i < links.length; i++) if (links[i].href.split("?")[0] === href) return;
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    (document.head || document.documentElement).appendChild(link);
  }

  // /api/suggest: titles, and the results page's count, correction, did-you-mean.
  function answerOf(d) {
    d = d || {};
    var text = function (v) { return typeof v === "string" && v ? v : null; };
    var fixed = text(d.correction && d.correction.searched);
    return { suggestions: Array.isArray(d.suggestions) ? d.suggestions : [], corrected: fixed,
             didYouMean: fixed ? null : text(d.did_you_mean), total: typeof d.total === "number" ? d.total : null };
  }

  function optionsFromData(input) {
    var data = input.dataset, out = {};
    if (data.endpoint) out.endpoint = data.endpoint;
    if (data.limit && /^\d+$/.test(data.limit)) out.limit = parseInt(data.limit, 10);
    if (data.open === "original") out.openOriginal = true;
    if (data.excerpt != null && data.excerpt !== "false") out.excerpt = true;
    if (data.slash === "off" || data.slash === "false") out.slashFocus = false;
    if (data.hot === "off" || data.hot === "false") out.hot = false;
    return out;
  }

  function Box(input, options) {
    var self = this;
    this.input = input;
    this.options = options;
    this.endpoint = trimSlash(options.endpoint || scriptBase);
    this.items = [];        // [{element, href, suggestion}]
    this.active = -1;
    this.composing = false;
    this.timer = 0;
    this.controller = null;
    this.seq = 0;
    this.cache = new Map();
    this.id = "ssw-" + (++counter);
    this.sid = newSessionId();  // one typing session per box and page load (analytics)
    this.reported = null;       // the query whose first click was reported

    var list = this.list = document.createElement("ul");
    list.id = this.id + "-list";
    list.className = "ssw-list";
    setAttrs(list, { role: "listbox", "aria-label": "搜索建议" });
    list.hidden = true;
    var status = this.status = setAttrs(document.createElement("div"), { role: "status", "aria-live": "polite" });
    status.className = "ssw-status";
    // Beside the box, so that the list is inside the page's landmark (the site's search form,
    // header, ...) for screen readers; it is placed with fixed, viewport coordinates.
    input.insertAdjacentElement("afterend", status);
    input.insertAdjacentElement("afterend", list);

    setAttrs(input, { role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false",
                      "aria-controls": list.id, autocomplete: "off" });
    if (options.stylesheet) ensureStylesheet(this.endpoint + "/static/widget.css");

    input.addEventListener("input", function (event) {
      if (self.composing || event.isComposing) return;
      self.schedule(self.options.delay);
    });
    input.addEventListener("compositionstart", function () {
      self.composing = true;
      self.cancel();
      if (self.shown === "" && !self.list.hidden) self.close();  // the hot searches: typing has begun
    });
    input.addEventListener("compositionend", function () {
      self.composing = false;
      self.schedule(self.options.delay);
    });
    input.addEventListener("keydown", function (event) { self.onKey(event); });
    input.addEventListener("blur", function () { self.close(); });
    input.addEventListener("focus", function () { if (!self.query()) self.showHot(); });
    // A click or tap back into the box reopens the list (a phone has no ArrowDown).
    input.addEventListener("click", function () { if (self.list.hidden) self.reopen(); });
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });  // keep focus
    list.addEventListener("mousemove", function (event) {
      var index = self.indexOf(event.target);
      if (index !== -1 && index !== self.active) self.setActive(index, false);
    });
    list.addEventListener("click", function (event) {
      var index = self.indexOf(event.target);
      if (index !== -1) self.choose(index);
    });
    window.addEventListener("resize", function () { if (!list.hidden) self.position(); });
    window.addEventListener("scroll", function () { if (!list.hidden) self.position(); }, { passive: true, capture: true });
  }

  Box.prototype.onKey = function (event) {
    if (event.isComposing || event.keyCode === 229 || this.composing) return;
    var open = !this.list.hidden;
    switch (event.key) {
      case "ArrowDown":
      case "ArrowUp":
        event.preventDefault();
        if (open) this.move(event.key === "ArrowDown" ? 1 : -1);
        else this.reopen();
        break;
      case "Enter":
        if (open && this.active !== -1) {
          event.preventDefault();
          this.choose(this.active);
          return;
        }
        this.close();
        if (!this.input.form && this.query()) {
          event.preventDefault();
          this.navigate(this.resultsUrl(this.query()));
        }
        break;  // inside a form: the form submits as usual
      case "Escape":
        if (open) {
          event.preventDefault();
          this.close();
        }
        break;
      case "Tab":
        this.close();
    }
  };

  Box.prototype.reopen = function () {
    if (this.composing) return;
    if (this.items.length && this.shown === this.query()) this.open();
    else this.schedule(0);
  };

  Box.prototype.query = function () {
    return this.input.value.trim();
  };

  Box.prototype.cancel = function () {
    clearTimeout(this.timer);
    this.seq++;  // any response still on its way is stale now
    if (this.controller) this.controller.abort();
    this.controller = null;
  };

  Box.prototype.schedule = function (delay) {
    var self = this;
    this.cancel();
    var q = this.query();
    if (q.length < this.options.minLength) {
      if (q) this.close();
      else this.showHot();
      return;
    }
    if (this.shown === "") this.close();  // the hot searches go as soon as something is typed
    this.timer = setTimeout(function () { self.fetch(q); }, delay);
  };

  Box.prototype.fetch = function (q) {
    var self = this;
    if (this.composing) return;
    if (this.cache.has(q)) {
      this.render(q, this.cache.get(q));
      return;
    }
    var seq = ++this.seq;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    this.controller = controller;
    var url = this.endpoint + "/api/suggest?q=" + encodeURIComponent(q) + "&limit=" + this.options.limit +
      "&sid=" + this.sid + (this.options.excerpt ? "&excerpt=1" : "");
    fetch(url, {
      signal: controller ? controller.signal : undefined,
      credentials: "omit",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      if (!response.ok) throw new Error("suggest: HTTP " + response.status);
      return response.json();
    }).then(function (data) {
      var answer = answerOf(data);
      if (self.cache.size >= CACHE_SIZE) self.cache.delete(self.cache.keys().next().value);
      self.cache.set(q, answer);
      // Out of order, superseded, or typed over meanwhile: drop it.
      if (seq !== self.seq || self.composing || self.query() !== q) return;
      self.render(q, answer);
    }).catch(function (error) {
      if (error && error.name === "AbortError") return;
      if (seq === self.seq) self.close();
    }).then(function () {
      if (self.controller === controller) self.controller = null;
    });
  };

  // The site's hot searches, fetched once per page: shown while the box is empty and focused.
  Box.prototype.showHot = function () {
    var self = this;
    if (!this.options.hot || this.composing) return this.close();
    if (this.hot) return this.renderHot();
    if (this.hotAsked) return;
    this.hotAsked = true;
    fetch(this.endpoint + "/api/hot", { credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { hot: [] }; })
      .then(function (data) {
        self.hot = (Array.isArray(data && data.hot) ? data.hot : []).filter(function (h) {
          return h && typeof h.query === "string" && h.query; }).slice(0, self.options.limit);
        if (document.activeElement === self.input && !self.query() && !self.composing) self.renderHot();
      }).catch(function () { self.hotAsked = false; });
  };

  Box.prototype.renderHot = function () {
    if (!this.hot.length) return this.close();
    var list = this.list;
    list.textContent = "";
    this.items = [];
    this.shown = "";
    var head = list.appendChild(setAttrs(document.createElement("li"), { role: "presentation", "aria-hidden": "true" }));
    head.className = "ssw-note";
    head.textContent = "热门搜索";
    list.setAttribute("aria-label", "热门搜索");
    for (var i = 0; i < this.hot.length; i++) this.addLink("ssw-hot", this.hot[i].query, this.hot[i].query);
    this.setActive(-1, false);
    this.open();
    list.style.scrollPaddingBottom = "0px";
    this.status.textContent = "热门搜索 " + this.hot.length + " 条，可用上下方向键选择";
  };

  Box.prototype.resolve = function (url, q) {
    var href;
    try {
      // page_url: an absolute path on the service's host
      href = new URL(url, this.endpoint + "/");
    } catch (e) {
      return null;
    }
    if (href.protocol !== "http:" && href.protocol !== "https:") return null;
    if (q && !href.searchParams.has("q")) href.searchParams.set("q", q);
    return href.href;
  };

  Box.prototype.resultsUrl = function (q) {
    return this.endpoint + this.options.searchPath + "?q=" + encodeURIComponent(q) + "&ref=widget";
  };

  Box.prototype.option = function (index) {
    var li = setAttrs(document.createElement("li"), { role: "option", "aria-selected": "false" });
    li.id = this.id + "-option-" + index;
    li.className = "ssw-option";
    return li;
  };

  // The institute's own page of the article when asked for and known, else the service's page.
  Box.prototype.hrefOf = function (s, q) {
    if (this.options.openOriginal && s.source_url) {
      var original = this.resolve(String(s.source_url), "");
      if (original) return original;
    }
    return this.resolve(String(s.page_url || ""), q);
  };

  function quoted(text) {
    text = String(text);
    return "「" + (text.length > 40 ? text.slice(0, 39) + "…" : text) + "」";
  }

  function addSpan(parent, className, marked, text) {
    var span = document.createElement("span");
    span.className = className;
    if (marked != null) appendMarked(span, marked);
    else span.textContent = text;
    parent.appendChild(span);
  }

  Box.prototype.addLink = function (className, text, q, searchesTyped) {
    var li = this.list.appendChild(this.option(this.items.length));
    li.className += " " + className;
    li.textContent = text;
    this.items.push({ element: li, href: this.resultsUrl(q), suggestion: null, searchesTyped: !!searchesTyped });
    return li;
  };

  Box.prototype.render = function (q, answer) {
    var list = this.list;
    list.textContent = "";
    this.items = [];
    this.shown = q;
    list.setAttribute("data-query", q);  // the text this list answers (a list for a prefix can come first)
    // For what the results page searches: the text, its correction, or (finding nothing) its did-you-mean.
    var dym = answer.didYouMean, instead = dym && !answer.total ? dym : null;
    var target = answer.corrected || instead || q;
    var note = answer.corrected ? "已显示" + quoted(target) + "的建议"
      : instead ? "没有找到" + quoted(q) + "的结果，你是不是要找" + quoted(dym) + "？" : "";
    if (note) {
      // Heard through the label and status (a listbox holds options only).
      var li = list.appendChild(setAttrs(document.createElement("li"), { role: "presentation", "aria-hidden": "true" }));
      li.className = "ssw-note";
      li.textContent = note;
    }
    list.setAttribute("aria-label", note ? quoted(target) + "的搜索建议" : "搜索建议");
    for (var i = 0; i < answer.suggestions.length; i++) {
      var s = answer.suggestions[i] || {};
      var href = this.hrefOf(s, target);
      if (!href) continue;
      var option = this.option(this.items.length);
      addSpan(option, "ssw-title", s.title_html, String(s.title || ""));
      if (s.pinned) option.className += " ssw-pinned";
      var meta = [s.category, s.date].filter(Boolean).join(" · ");
      if (meta) addSpan(option, "ssw-meta", null, meta);
      // Asked for, or sent as the title does not show the match.
      if (s.excerpt_html) addSpan(option, "ssw-excerpt", s.excerpt_html);
      list.appendChild(option);
      this.items.push({ element: option, href: href, suggestion: s });
    }
    var found = this.items.length;
    if (dym && !instead) this.addLink("ssw-dym", "你是不是要找" + quoted(dym), dym);
    // Never "nothing" when the page finds something.
    var nothing = !found && !dym && !answer.total;
    var all = this.addLink(nothing ? "ssw-all ssw-none" : "ssw-all", nothing ? "没有建议 — 搜索全部结果"
      : "搜索" + quoted(target) + "的全部结果" + (answer.total != null && !instead ? "（" + answer.total + " 条）" : ""),
      instead || q, !instead);  // the page corrects by itself
    this.setActive(-1, false);
    this.open();
    list.style.scrollPaddingBottom = all.offsetHeight + "px";  // arrow keys: not under the pinned row
    this.status.textContent = (note ? note + "。" : "") + (found ? "有 " + found + " 条建议，可用上下方向键选择"
      : (nothing ? "没有建议" : "没有标题建议") + "，按下方向键可搜索全部结果");
  };

  Box.prototype.indexOf = function (node) {
    while (node && node !== this.list) {
      for (var i = 0; i < this.items.length; i++) if (this.items[i].element === node) return i;
      node = node.parentNode;
    }
    return -1;
  };

  Box.prototype.setActive = function (index, scroll) {
    this.active = index;
    for (var i = 0; i < this.items.length; i++) {
      this.items[i].element.setAttribute("aria-selected", i === index ? "true" : "false");
    }
    if (index === -1) {
      this.input.removeAttribute("aria-activedescendant");
      return;
    }
    var element = this.items[index].element;
    this.input.setAttribute("aria-activedescendant", element.id);
    if (scroll && element.scrollIntoView) element.scrollIntoView({ block: "nearest" });
  };

  Box.prototype.move = function (delta) {
    var count = this.items.length, next = this.active + delta;
    if (!count) return;
    if (next < -1) next = count - 1;
    if (next >= count) next = -1;  // past either end: back to the text typed
    this.setActive(next, true);
  };

  Box.prototype.position = function () {
    var rect = this.input.getBoundingClientRect();
    var style = this.list.style;  // CSSOM, allowed by a strict CSP (style attributes are not)
    style.minWidth = Math.round(rect.width) + "px";
    style.top = Math.round(rect.bottom + 2) + "px";
    // Inside the viewport when the box is near the right edge. Measured at the left edge first: a
    // fixed list shrinks to the room on its right, so measured where it stood it looked narrow
    // enough, ended at the screen's very edge, and an arrow key's scrollIntoView panned the page.
    var room = document.documentElement.clientWidth - 8;
    style.left = "0px";
    var width = this.list.offsetWidth;
    var left = rect.left;
    if (left + width > room) left = Math.max(8, room - width);
    style.left = Math.round(left) + "px";
  };

  Box.prototype.open = function () {
    this.list.hidden = false;  // shown first so that its width can be measured
    this.position();
    this.input.setAttribute("aria-expanded", "true");
  };

  Box.prototype.close = function () {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    if (this.active !== -1) this.setActive(-1, false);
  };

  Box.prototype.choose = function (index) {
    var item = this.items[index];
    if (!item || !item.href) return;
    this.close();
    if (item.suggestion && item.suggestion.id != null && this.shown) {
      sendClick(this.endpoint, { q: this.shown, id: item.suggestion.id, rank: index + 1, channel: "widget",
                                 first: this.reported === this.shown ? 0 : 1 });
      this.reported = this.shown;
    }
    var href = item.href;
    var typed = this.query();
    if (item.searchesTyped && typed && typed !== this.shown) {
      // The row for all results, chosen while the list still answers an earlier text (typing
      // outran the answers): the reader means what the box now holds.
      href = this.resultsUrl(typed);
    }
    if (typeof this.options.onSelect === "function" && this.options.onSelect(item.suggestion, href) === false) return;
    this.navigate(href);
  };

  Box.prototype.navigate = function (href) {
    window.location.assign(href);
  };

  function attach(input, options) {
    if (typeof input === "string") input = document.querySelector(input);
    if (!input || input.tagName !== "INPUT") throw new TypeError("SearchBox.attach needs an <input> element");
    if (boxes.has(input)) return boxes.get(input);
    var box = new Box(input, Object.assign({}, DEFAULTS, optionsFromData(input), options || {}));
    boxes.set(input, box);
    if (box.options.slashFocus && !slashBox) slashBox = box;
    return box;
  }

  // "/" focuses the search box, as on many sites, unless the reader is typing somewhere.
  function typingIn(element) {
    return !!element && (/^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName) || element.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (!slashBox || typingIn(event.target) || typingIn(document.activeElement)) return;
    if (!document.contains(slashBox.input)) return;
    event.preventDefault();
    slashBox.input.focus();
    if (slashBox.input.select) slashBox.input.select();
  });

  function attachAll() {
    var inputs = document.querySelectorAll("input[data-search-box]");
    for (var i = 0; i < inputs.length; i++) attach(inputs[i]);
  }

  window.SearchBox = { attach: attach, attachAll: attachAll, version: "1.1" };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attachAll);
  else attachAll();
})();
