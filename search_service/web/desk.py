"""The staff relevance desk (issue 28; docs/ADMIN.md): pages under ``/admin/desk`` to pin and hide
results per query, edit synonym groups, accept dictionary words (and reindex), tune the hot-search
list, and undo any change; the admin JSON API (``/api/admin/...``); and the public ``GET /api/hot``.

Access is the analytics page's (``web/admin.py``): an API token as ``Authorization: Bearer``, or
in a browser HTTP basic auth with any user name and a token or ``admin_password``. Every change is
recorded with its *actor*: the basic-auth user name staff typed, and which credential it came with
(``管理密码``, or ``令牌 <first 8 hex digits of its SHA-256>``: never the secret).

Forms are protected against cross-site requests: browsers send basic-auth credentials with any
request to the site, so every POST form carries a token (an HMAC of the time and the credential,
keyed by the configured secrets: the same in every worker, valid :data:`CSRF_SECONDS`), and a
request a browser marks ``Sec-Fetch-Site: cross-site`` is refused. The JSON API takes writes only
as ``PUT``/``DELETE``/``POST`` with ``Content-Type: application/json`` or no body, which no
cross-site form can send.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request, url_for
from markupsafe import Markup, escape

from ..analytics import database_path
from ..engine.request import SearchRequest
from ..engine.searcher import EngineOptions, SearchEngine, Strategy
from ..errors import Forbidden, InvalidParameter, NotFound, SearchError, Unauthorized
from ..ingest import decode_json
from ..ingest.jsonl import JsonProblem
from ..rules import edits, hot, jobs, model, words
from ..rules.curations import Curation, curate_hits
from ..rules.source import RulesSource, RulesState
from ..rules.store import HistoryEntry, RulesDB, rules_path
from ..rules.synonyms import expansion_query, group_members, merged_table
from ..rules.transfer import ImportProblems, export_text, import_changes, parse_document
from ..text.synonyms import SynonymTable
from .auth import api_tokens, basic_password, bearer_secret, matches_any
from .routes import article_route

blueprint = Blueprint("desk", __name__)

SOURCE_KEY = "desk_rules"
PREVIEW_ENGINE_KEY = "desk_preview_engine"
HOT_KEY = "desk_hot"
#: Seconds a form's token stays valid (a page left open over a working day still saves).
CSRF_SECONDS = 12 * 3600
#: Results shown in the editor's preview (the first page readers see).
PREVIEW_HITS = 10
#: Articles the editor's title search lists.
FIND_LIMIT = 12
#: Curations the list page shows (most recently changed first; each is checked for vanished articles).
LIST_ROWS = 200
#: History entries per page.
HISTORY_PAGE = 50
#: Largest rules document the desk's import form takes, in bytes.
IMPORT_MAX_BYTES = 8 * 1024 * 1024

NAV = (("desk.overview", "概览"), ("desk.curations", "精选结果"), ("desk.synonyms", "同义词"),
       ("desk.words_page", "自定义词"), ("desk.hot_page", "热门搜索"), ("desk.history", "修改记录"))

MESSAGES = {
    "saved": "已保存。", "deleted": "已删除。", "undone": "已撤销。", "nothing": "没有变化。",
    "started": "任务已开始，进度见下方。", "refreshed": "已从搜索记录更新候选词。", "imported": "已导入。",
}


# --------------------------------------------------------------------------- access and actors


def _secrets() -> list[str]:
    settings = current_app.config["SETTINGS"]
    found = list(api_tokens(settings))
    if settings.admin_password:
        found.append(settings.admin_password)
    return found


def _supplied() -> bytes | None:
    return bearer_secret() or basic_password()


def _allowed() -> bool:
    supplied = _supplied()
    return supplied is not None and matches_any(supplied, _secrets())


def _check_api_access() -> None:
    """The admin API's check: JSON errors (403 when no secret is configured, else 401)."""
    if not _secrets():
        raise Forbidden("The admin API is off on this server: set SEARCH_SERVICE_API_TOKENS=<token> (or "
                        "SEARCH_SERVICE_ADMIN_PASSWORD) and restart.")
    if not _allowed():
        raise Unauthorized("Send an admin token as `Authorization: Bearer <token>` (or HTTP basic auth with "
                           "the admin password).")


def _page_denied() -> Response | None:
    """None for staff; else the analytics page's 403/401 page (same wording, same realm)."""
    from .admin import _denied

    return _denied()


def basic_user() -> str:
    """The user name of HTTP basic auth ('' when none): staff type their name there."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return ""
    user = decoded.partition(b":")[0].decode("utf-8", "replace")
    return " ".join(user.split())[:40]


def credential_label(supplied: bytes | None = None) -> str:
    """Which configured secret the request carries, without revealing it."""
    supplied = _supplied() if supplied is None else supplied
    if supplied is None:
        return "未登录"
    settings = current_app.config["SETTINGS"]
    if settings.admin_password and matches_any(supplied, [settings.admin_password]):
        return "管理密码"
    return "令牌 " + hashlib.sha256(supplied).hexdigest()[:8]


def actor() -> str:
    """Who makes this change, as the history shows it: ``张三（管理密码）`` or ``令牌 3fa2c1d0``."""
    user, label = basic_user(), credential_label()
    return f"{user}（{label}）" if user else label


# --------------------------------------------------------------------------- CSRF


def _csrf_key() -> bytes:
    return hashlib.sha256(b"desk-csrf\0" + "\0".join(sorted(_secrets())).encode("utf-8")).digest()


def _csrf_mac(stamp: str, supplied: bytes) -> str:
    message = stamp.encode("ascii") + b"." + hashlib.sha256(supplied).digest()
    return hmac.new(_csrf_key(), message, hashlib.sha256).hexdigest()[:40]


def csrf_token() -> str:
    """The token this staff member's forms carry (``time.mac``)."""
    stamp = str(int(time.time()))
    return f"{stamp}.{_csrf_mac(stamp, _supplied() or b'')}"


def _check_csrf() -> None:
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        raise Forbidden("A form of another site cannot change the desk's rules.")
    token = request.form.get("csrf", "")
    stamp, _, mac = token.partition(".")
    if not stamp.isdigit() or not mac:
        raise InvalidParameter("The form has no valid security token; reload the page and try again.", param="csrf")
    age = time.time() - int(stamp)
    if not -300 <= age <= CSRF_SECONDS or not hmac.compare_digest(mac, _csrf_mac(stamp, _supplied() or b"")):
        raise InvalidParameter("The form's security token has expired or belongs to another login; reload the "
                               "page and try again.", param="csrf")


# --------------------------------------------------------------------------- shared objects


def _settings():
    return current_app.config["SETTINGS"]


def engine_of_app() -> SearchEngine:
    from . import engine_of

    return engine_of(current_app)


def rules_db() -> RulesDB:
    settings = _settings()
    return RulesDB(rules_path(settings.index_dir, getattr(settings, "rules_db", "")))


def rules_source(app: Flask | None = None) -> RulesSource:
    """The rules this process applies: the engine's own (once the engine applies rules), else the desk's."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    from . import engine_of

    engine_rules = getattr(engine_of(app), "rules", None)
    if isinstance(engine_rules, RulesSource):
        return engine_rules
    source = app.extensions.get(SOURCE_KEY)
    if source is None:
        settings = app.config["SETTINGS"]
        source = app.extensions[SOURCE_KEY] = RulesSource(rules_path(settings.index_dir,
                                                                     getattr(settings, "rules_db", "")))
    return source


def _file_table() -> SynonymTable:
    synonyms = engine_of_app().synonyms
    file_table = getattr(synonyms, "file_table", None)
    return file_table() if callable(file_table) else synonyms.table()


def preview_engine() -> SearchEngine:
    """An engine on the same index that expands no synonyms and applies no curation (counts for the
    synonym preview); one per process, made on first use."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine = app.extensions.get(PREVIEW_ENGINE_KEY)
    if engine is None:
        settings = app.config["SETTINGS"]
        fields = {f.name for f in dataclasses.fields(Strategy)}
        off: dict[str, Any] = {"synonyms": False, **({"curations": False} if "curations" in fields else {})}
        strategy = Strategy(**off)
        options = dataclasses.replace(EngineOptions.from_settings(settings), cache_entries=256)
        engine = app.extensions[PREVIEW_ENGINE_KEY] = SearchEngine(settings.index_dir, options, strategy)
    return engine


def _hot_list() -> hot.HotList:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get(HOT_KEY)
    if found is None:
        settings = app.config["SETTINGS"]
        found = app.extensions[HOT_KEY] = hot.HotList(database_path(settings.index_dir, settings.analytics_db))
    return found


def _max_id_chars() -> int:
    return int(getattr(_settings(), "max_id_length", model.MAX_RULE_ID_CHARS))


def _changed(entry: HistoryEntry | None) -> str:
    # The next request of this process sees the change at once (others: on their next request).
    rules_source().current()
    return "saved" if entry is not None else "nothing"


@blueprint.after_request
def _private(response: Response) -> Response:
    if request.path.startswith(("/admin/", "/api/admin/")):
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --------------------------------------------------------------------------- view helpers


@dataclasses.dataclass
class Row:
    """One result as the editor's preview shows it."""

    id: str
    title_html: Markup
    snippet_html: Markup
    category: str
    date: str | None
    pinned: bool
    href: str


def _doc_exists(engine: SearchEngine, doc_id: str) -> bool:
    try:
        engine.document(doc_id)
        return True
    except NotFound:
        return False


def _title_of(engine: SearchEngine, doc_id: str) -> str | None:
    try:
        return engine.document(doc_id).title
    except NotFound:
        return None


def preview_rows(engine: SearchEngine, query: str, curation: Curation | None) -> list[Row]:
    """The first page of ``query`` as readers will see it with ``curation`` (pinned first, marked)."""
    extra = len(curation.pin) + len(curation.hide) if curation else 0
    results = engine.search(SearchRequest(q=query, page_size=min(100, PREVIEW_HITS + extra)))

    def row_of_hit(hit) -> Row:
        return Row(hit.id, Markup(hit.title_html), Markup(hit.snippet), hit.category, hit.date, False,
                   article_route(hit.id))

    def fetch(doc_id: str) -> Row | None:
        try:
            article = engine.document(doc_id)
        except NotFound:
            return None
        body = " ".join(article.body.split())
        return Row(article.id, escape(article.title), escape(body[:120] + ("…" if len(body) > 120 else "")),
                   article.category, article.date.isoformat() if article.date else None, True,
                   article_route(article.id))

    rows = [row_of_hit(hit) for hit in results.hits]
    if curation is None:
        return rows[:PREVIEW_HITS]
    out = []
    for row, pinned in curate_hits(rows, curation, lambda r: r.id, fetch, PREVIEW_HITS):
        out.append(dataclasses.replace(row, pinned=pinned))
    return out


def _render(template: str, status: int = 200, **context) -> Response:
    context.setdefault("error", None)
    message = MESSAGES.get(request.args.get("done", ""))
    response = Response(render_template(template, nav=NAV, csrf=csrf_token(), actor=actor(), message=message,
                                        search_url=_search_url,
                                        **context), status=status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def _search_url(query: str) -> str:
    return url_for("pages.search") + "?" + urlencode({"q": query})


def _redirect(endpoint: str, done: str, **params) -> Response:
    query = urlencode({**{k: v for k, v in params.items() if v not in (None, "")}, "done": done})
    return Response(status=303, headers={"Location": url_for(endpoint) + "?" + query})


def _form(name: str, default: str = "") -> str:
    value = request.form.get(name, default)
    return value if isinstance(value, str) else default


def _staff_page(view: Callable[..., Response]) -> Callable[..., Response]:
    """Pages: the analytics page's access; POSTs also need the form token. Errors a staff member can fix
    (bounds, a bad group) are shown on the page by the view itself."""

    def wrapped(*args, **kwargs):
        denied = _page_denied()
        if denied is not None:
            return denied
        if request.method == "POST":
            _check_csrf()
        return view(*args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


# --------------------------------------------------------------------------- overview


@blueprint.get("/admin/desk")
@_staff_page
def overview():
    """What the desk holds, the running job, the latest changes."""
    db = rules_db()
    state = rules_source().current()
    return _render("admin_desk.html", page="desk.overview", state=state,
                   proposals=len(words.proposals(db)), history=db.history(8),
                   job=db.latest_job("reindex") or db.latest_job("mine"),
                   hot_entries=_hot_list().entries(state.hot, state.version))


# --------------------------------------------------------------------------- curations


@blueprint.get("/admin/desk/curations")
@_staff_page
def curations():
    """Every query with pinned or hidden results."""
    db = rules_db()
    engine = engine_of_app()
    items = db.items("curation")
    rows = []
    for item in sorted(items, key=lambda i: -i.updated)[:LIST_ROWS]:
        missing = [i for i in (*item.value["pin"], *item.value["hide"]) if not _doc_exists(engine, i)]
        rows.append({"query": item.key, "pin": item.value["pin"], "hide": item.value["hide"], "missing": missing,
                     "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(item.updated)), "actor": item.actor,
                     "edit_url": url_for("desk.curation") + "?" + urlencode({"q": item.key})})
    return _render("admin_desk_curations.html", page="desk.curations", rows=rows, total=len(items),
                   limits={"pin": model.MAX_PINNED, "hide": model.MAX_HIDDEN, "rules": model.MAX_CURATIONS})


def _editor(query: str, error: str | None = None, status: int = 200, pin_text: str | None = None,
            hide_text: str | None = None) -> Response:
    engine = engine_of_app()
    db = rules_db()
    key = model.rule_query(query, "q")
    value = db.get("curation", key) or {"pin": [], "hide": []}
    item = db.item("curation", key)
    curation = Curation.of(key, value) if value["pin"] or value["hide"] else None
    pins = [{"id": i, "title": _title_of(engine, i)} for i in value["pin"]]
    hides = [{"id": i, "title": _title_of(engine, i)} for i in value["hide"]]
    find = request.args.get("find", "").strip()[:model.MAX_RULE_QUERY_CHARS]
    found = []
    if find:
        chosen = set(value["pin"]) | set(value["hide"])
        for suggestion in engine.suggest(find, FIND_LIMIT):
            found.append({"id": suggestion.id, "title_html": Markup(suggestion.title_html),
                          "category": suggestion.category, "date": suggestion.date,
                          "state": "pinned" if suggestion.id in value["pin"] else
                          "hidden" if suggestion.id in value["hide"] else "", "chosen": suggestion.id in chosen})
    return _render("admin_desk_curation.html", status=status, page="desk.curations", query=key, typed=query,
                   pins=pins, hides=hides, item=item, find=find, found=found, error=error,
                   preview=preview_rows(engine, key, curation),
                   pin_text="\n".join(value["pin"]) if pin_text is None else pin_text,
                   hide_text="\n".join(value["hide"]) if hide_text is None else hide_text,
                   limits={"pin": model.MAX_PINNED, "hide": model.MAX_HIDDEN})


@blueprint.get("/admin/desk/curation")
@_staff_page
def curation():
    """The editor of one query's pinned and hidden results (``?q=``; ``&find=`` searches titles)."""
    query = request.args.get("q", "")
    if not query.strip():
        return Response(status=303, headers={"Location": url_for("desk.curations")})
    return _editor(query)


@blueprint.post("/admin/desk/curation")
@_staff_page
def curation_post():
    """One editor action: ``op`` = pin | hide | unpin | unhide | up | down (with ``id``), save (the two
    lists as text, one id per line), delete."""
    query = _form("q")
    op = _form("op")
    doc_id = _form("id").strip()
    db, who = rules_db(), actor()
    pin_text, hide_text = _form("pin_text"), _form("hide_text")
    try:
        if op == "delete":
            done = "deleted" if edits.delete_curation(db, query, who) else "nothing"
        elif op == "save":
            pins = [line.strip() for line in pin_text.splitlines() if line.strip()]
            hides = [line.strip() for line in hide_text.splitlines() if line.strip()]
            if not pins and not hides:
                done = "deleted" if edits.delete_curation(db, query, who) else "nothing"
            else:
                _, _, entry = edits.set_curation(db, query, {"pin": pins, "hide": hides}, who, _max_id_chars())
                done = "saved" if entry else "nothing"
        elif op in ("pin", "hide", "unpin", "unhide", "up", "down"):
            if not doc_id:
                raise InvalidParameter("Choose an article (its id).", param="id")
            if op in ("pin", "hide") and not _doc_exists(engine_of_app(), doc_id):
                raise InvalidParameter(f"No article has the id {doc_id!r}.", param="id")
            done = _changed(edits.edit_curation(db, query, who, max_id_chars=_max_id_chars(), **{op: doc_id}))
        else:
            raise InvalidParameter(f"Unknown action {op[:20]!r}.", param="op")
    except InvalidParameter as exc:
        if exc.param == "q":
            raise
        return _editor(query, error=exc.message, status=400,
                       pin_text=pin_text if op == "save" else None, hide_text=hide_text if op == "save" else None)
    rules_source().current()
    if done == "deleted" and op == "delete":
        return _redirect("desk.curations", done)
    return _redirect("desk.curation", done, q=model.rule_query(query, "q"), find=_form("find"))


# --------------------------------------------------------------------------- synonyms


@dataclasses.dataclass
class PreviewRow:
    term: str
    before: int | None
    after: int | None

    @property
    def change(self) -> str:
        if self.before is None or self.after is None:
            return ""
        delta = self.after - self.before
        return f"+{delta}" if delta > 0 else str(delta) if delta else "不变"


def _count(engine: SearchEngine, query: str) -> int | None:
    try:
        results = engine.count(SearchRequest(q=query, correct=False))
    except SearchError:
        return None  # e.g. a group so large its query has too many terms
    return results.total if results.relaxed in (None, "substring") else 0


def synonym_preview(old: dict | None, new: dict | None, key: str | None) -> list[PreviewRow]:
    """Result counts of each member of ``old`` / ``new`` today and once ``new`` replaces ``old``."""
    db = rules_db()
    groups = {item.key: item.value for item in db.items("synonym")}
    base = _file_table()
    before = merged_table(base, list(groups.values()))
    if key is not None and key in groups:
        groups.pop(key)
    after_groups = list(groups.values()) + ([new] if new else [])
    after = merged_table(base, after_groups)
    members: dict[str, None] = {}
    for group in (old, new):
        if group:
            members.update(dict.fromkeys(group_members(group)))
    engine = preview_engine()
    return [PreviewRow(term, _count(engine, expansion_query(term, before)),
                       _count(engine, expansion_query(term, after))) for term in members]


def _synonyms_page(error: str | None = None, status: int = 200, text: str = "", edit: str = "",
                   preview: list[PreviewRow] | None = None, remove: str = "", removing: str = "") -> Response:
    db = rules_db()
    items = db.items("synonym")
    file_groups = _file_table().groups
    return _render("admin_desk_synonyms.html", status=status, page="desk.synonyms", error=error,
                   groups=[{"key": i.key, "text": model.group_text(i.value), "kind": i.value["kind"],
                            "actor": i.actor, "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(i.updated))}
                           for i in items],
                   file_groups=[" = ".join(g) for g in file_groups], text=text, edit=edit, preview=preview,
                   remove=remove, removing=removing,
                   limits={"groups": model.MAX_SYNONYM_GROUPS, "terms": model.MAX_GROUP_TERMS,
                           "chars": model.MAX_TERM_CHARS})


@blueprint.get("/admin/desk/synonyms")
@_staff_page
def synonyms():
    """Desk groups (editable), the file's groups (read-only), and a preview (``?text=&edit=KEY``)."""
    text = request.args.get("text", "")[:2000]
    edit = request.args.get("edit", "")[:40]
    remove = request.args.get("remove", "")[:40]
    preview = None
    error = None
    if remove:
        old = rules_db().get("synonym", remove)
        if old is None:
            return _synonyms_page("这个同义词组已不存在（可能刚被删除）。", 404)
        return _synonyms_page(preview=synonym_preview(old, None, remove), remove=remove,
                              removing=model.group_text(old))
    start = request.args.get("start", "").strip()[:model.MAX_TERM_CHARS]
    if start and not text.strip():
        # From the analytics page: the reader's word, waiting for the articles' word after it.
        return _synonyms_page(text=f"{start} = ")
    if text.strip():
        try:
            new = model.parse_group_text(text)
            old = rules_db().get("synonym", edit) if edit else None
            preview = synonym_preview(old, new, edit or None)
        except InvalidParameter as exc:
            error = exc.message
    elif edit:
        old = rules_db().get("synonym", edit)
        if old is None:
            error = "这个同义词组已不存在（可能刚被删除）。"
            edit = ""
        else:
            text = model.group_text(old)
    return _synonyms_page(error, 400 if error and text else 200, text, edit, preview)


@blueprint.post("/admin/desk/synonyms")
@_staff_page
def synonyms_post():
    """``op`` = add (``text``) | update (``key``, ``text``) | remove (``key``)."""
    op, key, text = _form("op"), _form("key")[:40], _form("text")
    db, who = rules_db(), actor()
    try:
        if op == "add":
            _, entry = edits.add_group(db, model.parse_group_text(text), who)
        elif op == "update":
            entry = edits.update_group(db, key, model.parse_group_text(text), who)
        elif op == "remove":
            entry = edits.remove_group(db, key, who)
        else:
            raise InvalidParameter(f"Unknown action {op[:20]!r}.", param="op")
    except InvalidParameter as exc:
        return _synonyms_page(exc.message, 400, text, key if op == "update" else "")
    return _redirect("desk.synonyms", _changed(entry) if op != "remove" else ("deleted" if entry else "nothing"))


# --------------------------------------------------------------------------- words


def _texts_of(engine: SearchEngine) -> Callable[[str], list[str]]:
    def texts(word: str) -> list[str]:
        out = []
        for hit in engine.search(SearchRequest(q=f'"{word}"', page_size=3, correct=False)).hits:
            try:
                article = engine.document(hit.id)
            except NotFound:
                continue
            out.append(f"{article.title}\n{article.body}")
        return out

    return texts


@blueprint.get("/admin/desk/words")
@_staff_page
def words_page():
    """Proposed words with their evidence (``?status=proposed|accepted|rejected``), the jobs."""
    status = request.args.get("status", "proposed")
    if status not in model.WORD_STATUSES:
        status = "proposed"
    db = rules_db()
    state = rules_source().current()
    accepted = words.accepted_words(db)
    pending = sorted(set(accepted) - state.dictionary)
    listed = words.proposals(db, status)
    return _render("admin_desk_words.html", page="desk.words_page", word_status=status, rows=listed,
                   counts={s: len(words.proposals(db, s)) if s != status else len(listed)
                           for s in model.WORD_STATUSES},
                   pending=pending, in_effect=sorted(state.dictionary),
                   reindex=db.latest_job("reindex"), mine=db.latest_job("mine"))


@blueprint.post("/admin/desk/words")
@_staff_page
def words_post():
    """``op`` = accept | reject | undecide (``word``), refresh (from analytics), mine, reindex (jobs)."""
    op = _form("op")
    db, who = rules_db(), actor()
    status = _form("status", "proposed")
    if op in ("accept", "reject", "undecide"):
        target = {"accept": "accepted", "reject": "rejected", "undecide": "proposed"}[op]
        done = _changed(edits.decide_word(db, _form("word"), target, who))
    elif op == "refresh":
        settings = _settings()
        count = words.refresh_from_analytics(db, database_path(settings.index_dir, settings.analytics_db),
                                             _texts_of(engine_of_app()))
        db.note(who, f"从搜索记录更新候选词（{count} 个）")
        done = "refreshed"
    elif op in ("mine", "reindex"):
        jobs.start(_settings(), op, who)
        db.note(who, "开始重建索引（使已采纳的自定义词生效）" if op == "reindex" else "开始从文章中挖掘候选词")
        done = "started"
    else:
        raise InvalidParameter(f"Unknown action {op[:20]!r}.", param="op")
    return _redirect("desk.words_page", done, status=status if status in model.WORD_STATUSES else None)


@blueprint.get("/admin/desk/jobs/<int:job_id>")
@_staff_page
def job_status(job_id: int):
    """One job's progress as JSON (the words page polls it when scripts run; it refreshes itself otherwise)."""
    job = rules_db().job(job_id)
    if job is None:
        raise NotFound(f"No job {job_id}.")
    return jsonify(job.to_json())


# --------------------------------------------------------------------------- hot searches


def _counted(rules) -> list[tuple[str, int]]:
    """The hot list's candidates with their counts (none when the analytics file cannot be read: logged)."""
    settings = _settings()
    try:
        return hot.computed(database_path(settings.index_dir, settings.analytics_db), rules.days,
                            rules.min_searches, rules.length + len(rules.blocks) + len(rules.pins) + 20)
    except sqlite3.Error as exc:
        current_app.logger.warning("hot searches: the analytics file cannot be read (%s)", exc)
        return []


@blueprint.get("/admin/desk/hot")
@_staff_page
def hot_page():
    """The hot list readers get, the entries it is computed from (with counts), pins, blocks, settings."""
    state = rules_source().current()
    rules = state.hot
    counted = _counted(rules)
    return _render("admin_desk_hot.html", page="desk.hot_page", rules=rules,
                   public=hot.hot_list(rules, counted), counted=counted, blocks=sorted(rules.blocks),
                   limits={"length": model.MAX_HOT_LENGTH, "days": model.MAX_HOT_DAYS, "pins": model.MAX_HOT_PINS})


@blueprint.post("/admin/desk/hot")
@_staff_page
def hot_post():
    """``op`` = pin | unpin | up | down | block | unblock (``entry``), settings (length, days, min_searches)."""
    op, entry = _form("op"), _form("entry")
    db, who = rules_db(), actor()
    actions: dict[str, Callable[[], HistoryEntry | None]] = {
        "pin": lambda: edits.pin_hot(db, entry, who), "unpin": lambda: edits.unpin_hot(db, entry, who),
        "up": lambda: edits.move_hot(db, entry, -1, who), "down": lambda: edits.move_hot(db, entry, 1, who),
        "block": lambda: edits.block_hot(db, entry, who), "unblock": lambda: edits.unblock_hot(db, entry, who),
        "settings": lambda: edits.set_hot_settings(db, {name: _form(name) for name in model.HOT_DEFAULTS}, who),
    }
    if op not in actions:
        raise InvalidParameter(f"Unknown action {op[:20]!r}.", param="op")
    try:
        done = _changed(actions[op]())
    except InvalidParameter as exc:
        state = rules_source().current()
        counted = _counted(state.hot)
        return _render("admin_desk_hot.html", status=400, page="desk.hot_page", rules=state.hot, error=exc.message,
                       public=hot.hot_list(state.hot, counted), counted=counted, blocks=sorted(state.hot.blocks),
                       limits={"length": model.MAX_HOT_LENGTH, "days": model.MAX_HOT_DAYS,
                               "pins": model.MAX_HOT_PINS})
    return _redirect("desk.hot_page", done)


# --------------------------------------------------------------------------- history, export, import


@blueprint.get("/admin/desk/history")
@_staff_page
def history():
    """Every change, newest first, each with its undo button."""
    db = rules_db()
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    total = db.history_count()
    return _render("admin_desk_history.html", page="desk.history", entries=db.history(HISTORY_PAGE,
                                                                                       (page - 1) * HISTORY_PAGE),
                   number=page, pages=max(1, math.ceil(total / HISTORY_PAGE)), total=total,
                   when=lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)))


@blueprint.post("/admin/desk/history")
@_staff_page
def history_post():
    """``op`` = undo (``id``)."""
    raw = _form("id")
    if _form("op") != "undo" or not raw.isdigit():
        raise InvalidParameter("Send op=undo and the id of a change.", param="id")
    try:
        rules_db().undo(int(raw), actor())
    except SearchError as exc:
        if exc.status not in (400, 404, 409):
            raise
        db = rules_db()
        return _render("admin_desk_history.html", status=exc.status, page="desk.history", error=exc.message,
                       entries=db.history(HISTORY_PAGE), number=1,
                       pages=max(1, math.ceil(db.history_count() / HISTORY_PAGE)), total=db.history_count(),
                       when=lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)))
    rules_source().current()
    return _redirect("desk.history", "undone")


@blueprint.get("/admin/desk/export")
@_staff_page
def export():
    """Every rule as the ``rules export`` document (a download)."""
    name = time.strftime("search-rules-%Y%m%d-%H%M%S.json")
    response = Response(export_text(rules_db()), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@blueprint.post("/admin/desk/import")
@_staff_page
def import_post():
    """Replace every rule with an uploaded export document (``file``); problems listed by line."""
    upload = request.files.get("file")
    db = rules_db()
    if upload is None or not upload.filename:
        problems = ["请选择一个由“导出”得到的 JSON 文件。"]
    else:
        raw = upload.stream.read(IMPORT_MAX_BYTES + 1)
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:80]
        problems = []
        if len(raw) > IMPORT_MAX_BYTES:
            problems = [f"{name}: larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB."]
        else:
            try:
                contents = parse_document(raw.decode("utf-8-sig"), name)
                db.change(actor(), f"导入规则（{name}）", import_changes(db, contents))
            except UnicodeDecodeError:
                problems = [f"{name}: not UTF-8 text; save the file as UTF-8."]
            except ImportProblems as exc:
                problems = exc.problems
    if problems:
        return _render("admin_desk_history.html", status=400, page="desk.history", import_problems=problems,
                       entries=db.history(HISTORY_PAGE), number=1,
                       pages=max(1, math.ceil(db.history_count() / HISTORY_PAGE)), total=db.history_count(),
                       when=lambda ts: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)))
    rules_source().current()
    return _redirect("desk.history", "imported")


# --------------------------------------------------------------------------- the admin JSON API


def _json_body() -> Any:
    content_type = request.mimetype or ""
    if content_type != "application/json":
        from ..errors import UnsupportedMediaType

        raise UnsupportedMediaType("Send the body as JSON with `Content-Type: application/json`.")
    try:
        return decode_json(request.get_data(cache=False).decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidParameter("The body is not UTF-8.", param="body") from None
    except JsonProblem as exc:
        raise InvalidParameter(f"The body is not valid JSON: {exc}.", param="body") from None


def _curation_json(key: str, item) -> dict:
    engine = engine_of_app()
    value = item.value
    missing = [i for i in (*value["pin"], *value["hide"]) if not _doc_exists(engine, i)]
    return {"query": key, "pin": value["pin"], "hide": value["hide"], "missing": missing,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(item.updated)), "actor": item.actor}


@blueprint.get("/api/admin/curations")
def api_curations():
    """Every curation."""
    _check_api_access()
    return jsonify({"curations": [_curation_json(i.key, i) for i in rules_db().items("curation")]})


@blueprint.route("/api/admin/curations/<path:query>", methods=["GET", "PUT", "DELETE"])
def api_curation(query: str):
    """One query's curation: GET it, PUT ``{"pin": [ids], "hide": [ids]}``, DELETE it."""
    _check_api_access()
    db = rules_db()
    key = model.rule_query(query)
    if request.method == "PUT":
        edits.set_curation(db, query, _json_body(), actor(), _max_id_chars())
        rules_source().current()
    elif request.method == "DELETE":
        if edits.delete_curation(db, query, actor()) is None:
            raise NotFound(f"No curation for {key!r}.")
        rules_source().current()
        return Response(status=204)
    item = db.item("curation", key)
    if item is None:
        raise NotFound(f"No curation for {key!r}; create one with PUT.")
    return jsonify(_curation_json(key, item))


def _synonyms_json() -> dict:
    db = rules_db()
    return {"groups": [{"id": i.key, **i.value} for i in db.items("synonym")],
            "file_groups": [list(g) for g in _file_table().groups]}


@blueprint.route("/api/admin/synonyms", methods=["GET", "PUT"])
def api_synonyms():
    """The desk's synonym groups (and, read-only, the file's): PUT ``{"groups": [...]}`` replaces them all."""
    _check_api_access()
    if request.method == "PUT":
        edits.replace_synonyms(rules_db(), _json_body(), actor())
        rules_source().current()
    return jsonify(_synonyms_json())


@blueprint.get("/api/admin/history")
def api_history():
    """The latest changes (``?limit=`` up to 500)."""
    _check_api_access()
    raw = request.args.get("limit", "100")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise InvalidParameter(f"limit must be a whole number from 1 to 500; got {raw[:20]!r}.", param="limit")
    return jsonify({"history": [e.to_json() for e in rules_db().history(int(raw))]})


@blueprint.post("/api/admin/history/<int:entry_id>/undo")
def api_undo(entry_id: int):
    """Undo change ``entry_id`` (409 when a later change to the same rule must be undone first)."""
    _check_api_access()
    entry = rules_db().undo(entry_id, actor())
    rules_source().current()
    return jsonify(entry.to_json())


# --------------------------------------------------------------------------- public: hot searches


@blueprint.get("/api/hot")
def api_hot():
    """The hot-search list for the search box: ``{"days", "hot": [{"query", "pinned", "url"}]}``."""
    for name in request.args:
        raise InvalidParameter(f"unknown parameter {name!r}; this endpoint takes none.", param=name)
    state: RulesState = rules_source().current()
    entries = _hot_list().entries(state.hot, state.version)
    base = url_for("pages.search")
    response = jsonify({"days": state.hot.days,
                        "hot": [{**e.to_json(), "url": base + "?" + urlencode({"q": e.query})} for e in entries]})
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


# --------------------------------------------------------------------------- OpenAPI


# Character classes of the JSON Schema patterns (ECMA-262 and Python's re alike): what the rules'
# validation (rules/model.py, article.character_problem and id_problem) accepts, stated for clients.
#: Whitespace as ``str.strip()`` sees it (what the server ignores around a term).
_WS = r"\t-\r\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: C0 and C1 controls and DEL: never in a query, an id or a term.
_CONTROL = r"\u0000-\u001f\u007f-\u009f"
#: Separators of the synonyms file format and the one-way arrow: never in a term.
_SEPARATORS = "=,\uff0c\u3001#>"


def _id_schema(settings) -> dict:
    """An article id as the articles store it: 1 to ``max_id_length`` characters, no control characters,
    no leading or trailing whitespace."""
    edge = rf"[^{_CONTROL}\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    return {"type": "string", "maxLength": settings.max_id_length, "pattern": f"^{edge}(?:[^{_CONTROL}]*{edge})?$"}


def _term_schema() -> dict:
    """A synonym term: 1 to ``MAX_TERM_CHARS`` characters once surrounding whitespace is removed, no control
    character or separator."""
    inner = f"[^{_CONTROL}{_SEPARATORS}]"
    edge = f"[^{_WS}{_CONTROL}{_SEPARATORS}]"
    core = f"{edge}(?:{inner}{{0,{model.MAX_TERM_CHARS - 2}}}{edge})?"
    return {"type": "string", "pattern": f"^[{_WS}]*{core}[{_WS}]*$",
            "description": f"1 to {model.MAX_TERM_CHARS} characters (rules.model.MAX_TERM_CHARS) once surrounding "
                           "whitespace is removed; no control character, none of = , ， 、 # >"}


def add_openapi(document: dict, settings) -> dict:
    """Add the desk's API and ``GET /api/hot`` to the OpenAPI document (``web/openapi.py`` calls this when
    the app serves the desk). Every rule the server applies that JSON Schema can state is stated; the
    others are in the descriptions: terms that are one term once folded (width, case, script, spaces)."""
    error = {"$ref": "#/components/responses/Error"}
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    unavailable = {"$ref": "#/components/responses/Unavailable"}
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    schemas = document["components"]["schemas"]
    ids = {"type": "array", "uniqueItems": True, "items": _id_schema(settings)}
    schemas["CurationInput"] = {
        "type": "object", "additionalProperties": False,
        "description": f"Article ids, in order: at most {model.MAX_PINNED} pinned and {model.MAX_HIDDEN} hidden "
                       "(rules.model.MAX_PINNED, MAX_HIDDEN), not both lists empty (DELETE removes a rule); an "
                       "id in both lists is pinned.",
        "properties": {"pin": {**ids, "maxItems": model.MAX_PINNED}, "hide": {**ids, "maxItems": model.MAX_HIDDEN}},
        "anyOf": [{"required": ["pin"], "properties": {"pin": {"minItems": 1}}},
                  {"required": ["hide"], "properties": {"hide": {"minItems": 1}}}],
    }
    plain_ids = {"type": "array", "items": {"type": "string"}}
    schemas["Curation"] = {
        "type": "object", "required": ["query", "pin", "hide", "missing", "updated", "actor"],
        "properties": {"query": {"type": "string", "description": "the normalized query the rule is kept under"},
                       "pin": plain_ids, "hide": plain_ids,
                       "missing": {**plain_ids, "description": "ids no live article has (deleted or renamed)"},
                       "updated": {"type": "string"}, "actor": {"type": "string"}},
    }
    term = _term_schema()
    group_id = {"type": "string", "description": "as GET lists the group (ignored in a PUT)"}
    group = {"oneOf": [
        {"type": "object", "required": ["terms"], "additionalProperties": False,
         "description": "two-way: every term finds the others; terms that are one term once folded (width, case, "
                        "script, spaces) count once, and two different ones are needed",
         "properties": {"id": group_id, "kind": {"const": "two_way"},
                        "terms": {"type": "array", "minItems": 2, "maxItems": model.MAX_GROUP_TERMS,
                                  "uniqueItems": True, "items": term}}},
        {"type": "object", "required": ["kind", "from", "to"], "additionalProperties": False,
         "description": "one-way: `from` also finds `to`, not the reverse; `to` needs a term other than `from` once "
                        "folded (width, case, script, spaces)",
         "properties": {"id": group_id, "kind": {"const": "one_way"}, "from": term,
                        "to": {"type": "array", "minItems": 1, "maxItems": model.MAX_GROUP_TERMS - 1,
                               "uniqueItems": True, "items": term}}}]}
    file_groups = {"type": "array", "items": {"type": "array", "items": {"type": "string"}},
                   "description": "the synonyms file's groups, read-only (ignored in a PUT)"}
    schemas["SynonymsInput"] = {
        "type": "object", "required": ["groups"], "additionalProperties": False,
        "description": "every desk group; a group given twice (the same terms once folded, in any order) is kept "
                       "once",
        "properties": {"groups": {"type": "array", "maxItems": model.MAX_SYNONYM_GROUPS, "items": group},
                       "file_groups": file_groups},
    }
    stored_group = {"type": "object", "required": ["id", "kind"],
                    "properties": {"id": {"type": "string"}, "kind": {"enum": list(model.GROUP_KINDS)},
                                   "terms": {"type": "array", "items": {"type": "string"}},
                                   "from": {"type": "string"}, "to": {"type": "array", "items": {"type": "string"}}}}
    schemas["Synonyms"] = {"type": "object", "required": ["groups", "file_groups"],
                           "properties": {"groups": {"type": "array", "items": stored_group},
                                          "file_groups": file_groups}}
    history_entry = {"type": "object", "required": ["id", "time", "actor", "summary", "changes", "undo_of",
                                                    "undone_by"],
                     "properties": {"id": {"type": "integer"}, "time": {"type": "string"},
                                    "actor": {"type": "string"}, "summary": {"type": "string"},
                                    "changes": {"type": "array", "items": {"type": "object"}},
                                    "undo_of": {"type": ["integer", "null"]},
                                    "undone_by": {"type": ["integer", "null"]}}}
    query = {"name": "query", "in": "path", "required": True,
             "description": "the query, matched after folding width, case, Traditional/Simplified and spaces: "
                            f"at most {model.MAX_RULE_QUERY_CHARS} characters (rules.model.MAX_RULE_QUERY_CHARS) "
                            "with one that is not whitespace, no control character; a URL cannot carry a query "
                            "that starts with / or has a . or .. segment",
             "schema": {"type": "string", "maxLength": model.MAX_RULE_QUERY_CHARS,
                        "pattern": f"^[^{_CONTROL}]*[^{_WS}{_CONTROL}][^{_CONTROL}]*$",
                        "not": {"pattern": r"^/|(?:^|/)\.\.?(?:/|$)"}}}

    def ok(description: str, schema: dict) -> dict:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    auth = {"401": unauthorized, "403": error}
    curation = {"$ref": "#/components/schemas/Curation"}
    paths = document["paths"]
    paths["/api/hot"] = {"get": {
        "summary": "Hot searches: what readers searched most in the last days and found (staff pins first, "
                   "blocked entries left out); for the search box to show when it is focused and empty",
        "operationId": "hot",
        "responses": {"200": ok("the list", {
            "type": "object", "required": ["days", "hot"],
            "properties": {"days": {"type": "integer"}, "hot": {"type": "array", "items": {
                "type": "object", "required": ["query", "pinned", "url"],
                "properties": {"query": {"type": "string"}, "pinned": {"type": "boolean"},
                               "url": {"type": "string", "description": "the results page of the query"}}}}}}),
            "400": error},
    }}
    paths["/api/admin/curations"] = {"get": {
        "summary": "Every query's pinned and hidden results (staff)", "operationId": "listCurations",
        "security": secured,
        "responses": {"200": ok("the curations", {"type": "object", "required": ["curations"], "properties": {
            "curations": {"type": "array", "items": curation}}}), **auth, "503": unavailable}}}
    paths["/api/admin/curations/{query}"] = {
        "get": {"summary": "One query's pinned and hidden results", "operationId": "getCuration",
                "security": secured, "parameters": [query],
                "responses": {"200": ok("the curation", curation), "400": error, **auth, "404": error,
                              "503": unavailable}},
        "put": {"summary": "Pin articles (in order) and hide others for one query; in effect on the next request",
                "operationId": "putCuration", "security": secured, "parameters": [query],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/CurationInput"}}}},
                "responses": {"200": ok("saved", curation), "400": error, **auth, "404": error, "413": error,
                              "415": error, "503": unavailable}},
        "delete": {"summary": "Remove one query's curation", "operationId": "deleteCuration",
                   "security": secured, "parameters": [query],
                   "responses": {"204": {"description": "removed"}, "400": error, **auth, "404": error,
                                 "503": unavailable}},
    }
    paths["/api/admin/synonyms"] = {
        "get": {"summary": "The desk's synonym groups (and the synonyms file's, read-only)",
                "operationId": "getSynonyms", "security": secured,
                "responses": {"200": ok("the groups", {"$ref": "#/components/schemas/Synonyms"}), **auth,
                              "503": unavailable}},
        "put": {"summary": "Replace every desk synonym group; in effect on the next request of every worker",
                "operationId": "putSynonyms", "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/SynonymsInput"}}}},
                "responses": {"200": ok("saved", {"$ref": "#/components/schemas/Synonyms"}), "400": error, **auth,
                              "413": error, "415": error, "503": unavailable}},
    }
    paths["/api/admin/history"] = {"get": {
        "summary": "The latest changes to the staff rules", "operationId": "rulesHistory", "security": secured,
        "parameters": [{"name": "limit", "in": "query", "required": False, "description": "how many (1-500)",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}],
        "responses": {"200": ok("the history", {"type": "object", "required": ["history"], "properties": {
            "history": {"type": "array", "items": history_entry}}}), "400": error, **auth, "503": unavailable}}}
    paths["/api/admin/history/{entry_id}/undo"] = {"post": {
        "summary": "Undo one change (409 when a later change to the same rule must be undone first)",
        "operationId": "undoChange", "security": secured,
        "parameters": [{"name": "entry_id", "in": "path", "required": True, "description": "the change's id",
                        "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": ok("the undoing change", history_entry), "400": error, **auth, "404": error,
                      "409": error, "503": unavailable}}}
    return document
