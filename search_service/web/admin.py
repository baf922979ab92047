"""Staff pages: ``/admin/analytics`` (what readers search, find and click) and its CSV exports.

Access: the API tokens (``api_tokens``) as ``Authorization: Bearer``, or in a browser
HTTP basic auth with any user name and a token or ``admin_password`` as the password.
Without either setting the pages are off (403 saying how to turn them on).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, current_app, render_template, request, url_for

from ..analytics import AnalyticsDB, DayRow, Period, QueryRow, Report, database_path, dictionary_hint
from ..errors import AnalyticsUnavailable, InvalidParameter, NotFound
from ..sqlite_files import is_busy
from .auth import api_tokens, basic_password, bearer_secret, matches_any
from .costly import costly
from .pages import csv_cell
from .tracking import recorder_of

blueprint = Blueprint("admin", __name__)
T = TypeVar("T")

REALM = 'Basic realm="search admin", charset="UTF-8"'
PRESETS = (7, 30, 90)
TABLE_ROWS = 50
CSV_ROWS = 10_000
DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
TABLES = ("top", "zero", "noclick", "daily", "filtered", "corrections", "offered", "refined")
CHANNEL_LABELS = {"page": "结果页", "widget": "搜索框建议", "api": "API", "script": "脚本与自动浏览器（不计入统计）"}


# --------------------------------------------------------------------------- access


def _secrets() -> list[str]:
    settings = current_app.config["SETTINGS"]
    secrets = list(api_tokens(settings))
    if settings.admin_password:
        secrets.append(settings.admin_password)
    return secrets


def _denied() -> Response | None:
    """None for staff; otherwise the 403 (not configured) or 401 (ask for credentials) page."""
    secrets = _secrets()
    if not secrets:
        return _access_page(403)
    supplied = bearer_secret() or basic_password()
    if supplied is not None and matches_any(supplied, secrets):
        return None
    response = _access_page(401)
    response.headers["WWW-Authenticate"] = REALM
    return response


def _access_page(status: int) -> Response:
    response = Response(render_template("admin_denied.html", status=status), status=status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


@blueprint.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --------------------------------------------------------------------------- view model


def _db() -> AnalyticsDB:
    settings = current_app.config["SETTINGS"]
    recorder = recorder_of(current_app)
    db = getattr(recorder, "db", None)
    if db is not None:
        return db
    return AnalyticsDB(database_path(settings.index_dir, settings.analytics_db))


def _period() -> Period:
    return Period.parse(request.args.get("from"), request.args.get("to"))


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    zero_y: float
    zero_height: float
    title: str


@dataclasses.dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclasses.dataclass(frozen=True)
class Chart:
    """Searches per day as plain SVG geometry (the template draws it; no script, no inline style)."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    maximum: int
    description: str


def _nice_ceiling(value: int) -> int:
    if value <= 4:
        return 4
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(math.ceil(step * magnitude))
    return value


def daily_chart(days: list[DayRow]) -> Chart:
    width, height, left, right, top, bottom = 760, 220, 44, 10, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d.searches for d in days), default=0)
    maximum = _nice_ceiling(peak)
    slot = plot_w / max(1, len(days))
    bar_w = max(1.0, slot * 0.75)
    bars = []
    for index, day in enumerate(days):
        h = plot_h * day.searches / maximum
        zh = plot_h * day.zero_results / maximum
        x = left + index * slot + (slot - bar_w) / 2
        bars.append(Bar(round(x, 2), round(bar_w, 2), round(top + plot_h - h, 2), round(h, 2),
                        round(top + plot_h - zh, 2), round(zh, 2),
                        f"{day.day}：搜索 {day.searches} 次，无结果 {day.zero_results} 次，点击 {day.clicks} 次"))
    y_ticks = [Tick(round(top + plot_h - plot_h * f, 2), str(int(maximum * f))) for f in (0, 0.5, 1)]
    step = max(1, math.ceil(len(days) / 8))
    x_ticks = [Tick(round(left + i * slot + slot / 2, 2), days[i].day[5:]) for i in range(0, len(days), step)]
    total = sum(d.searches for d in days)
    busiest = max(days, key=lambda d: d.searches, default=None)
    description = (f"共 {len(days)} 天，搜索 {total} 次" +
                   (f"，最多的一天是 {busiest.day}（{busiest.searches} 次）" if busiest and busiest.searches else ""))
    return Chart(width, height, left, top, plot_w, plot_h, bars, y_ticks, x_ticks, maximum, description)


class AnalyticsView:
    """URLs and formatted numbers for ``admin_analytics.html``."""

    def __init__(self, report: Report, today: dt.date) -> None:
        self.report = report
        self.period = report.period
        self.today = today
        self.chart = daily_chart(report.daily)
        self._hints: dict[tuple[str, int], dict] = {}

    def period_url(self, period: Period, endpoint: str = "admin.analytics", **extra) -> str:
        params = {"from": period.start.isoformat(), "to": period.end.isoformat(), **extra}
        return url_for(endpoint) + "?" + urlencode(params)

    def presets(self) -> list[tuple[str, str, bool]]:
        out = []
        for days in PRESETS:
            preset = Period.last(days, self.today)
            out.append((f"近 {days} 天", self.period_url(preset), preset == self.period))
        return out

    def csv_url(self, table: str) -> str:
        return self.period_url(self.period, "admin.analytics_csv", table=table)

    def search_url(self, query: str) -> str:
        return url_for("pages.search") + "?" + urlencode({"q": query})

    def hint(self, row: QueryRow) -> dict:
        """The dictionary hint of an unfound query: ``searches`` (its unfound searches in the period)
        lets a term of rare characters that several readers typed be proposed all the same."""
        key = (row.query, row.searches)
        if key not in self._hints:
            self._hints[key] = dictionary_hint(row.query, searches=row.searches)
        return self._hints[key]

    def slip_actions(self, typed: str, meant: str) -> list[tuple[str, str, str]]:
        """(label, URL, desk page) of what staff can do about a slip ``typed`` for ``meant``: a one-way
        synonym group ``typed => meant`` ready to preview and save, or pinned results for ``typed``.
        Without the desk, the docs that say how ("" for the desk page)."""
        synonym = self.desk_url("synonyms", text=f"{typed} => {meant}")
        curate = self.desk_url("curation", q=typed)
        if synonym is None or curate is None:
            return [("加同义词", self.docs_url("synonyms"), "")]
        return [("加同义词", synonym, "synonyms"), ("精选结果", curate, "curation")]

    def docs_url(self, anchor: str) -> str:
        return url_for("admin.docs", name="RELEVANCE.md") + "#" + anchor

    def desk_url(self, endpoint: str, **params: str) -> str | None:
        """A page of the relevance desk (``web/desk.py``), or None while the app does not serve it."""
        if "desk" not in current_app.blueprints:
            return None
        url = url_for(f"desk.{endpoint}")
        return url + ("?" + urlencode(params) if params else "")

    @property
    def summary(self):
        return self.report.summary

    def channels(self) -> list[tuple[str, int]]:
        return [(CHANNEL_LABELS[c], n) for c, n in self.summary.by_channel]

    percent = staticmethod(_percent)
    number = staticmethod(_number)


# --------------------------------------------------------------------------- pages


@blueprint.get("/admin/")
@blueprint.get("/admin")
def index():
    denied = _denied()
    if denied is not None:
        return denied
    return Response(status=302, headers={"Location": url_for("admin.analytics")})


@blueprint.get("/admin/analytics")
def analytics():
    """The staff analytics page for ``?from=&to=`` (default: the last 30 days)."""
    denied = _denied()
    if denied is not None:
        return denied
    period = _period()
    recorder = recorder_of(current_app)
    report, set_aside = _read(lambda db: db.report(period, TABLE_ROWS))
    view = AnalyticsView(report, dt.date.today())
    return render_template("admin_analytics.html", view=view, report=report, summary=report.summary,
                           recording=recorder.enabled, dropped=recorder.dropped,
                           problem=getattr(recorder, "problem", None), set_aside=set_aside,
                           retention_days=current_app.config["SETTINGS"].analytics_retention_days)


def _read(work: Callable[[AnalyticsDB], T]) -> tuple[T, str | None]:
    """``work(db)``, and the name the damaged file was moved to when it had to be (else None).

    A damaged file ("file is not a database") is set aside and a new one started, as the
    recorder does on its next write, so staff see the page (with a notice) instead of an
    error; a file that cannot be read for another reason is a 503 that says so.
    """
    db = _db()
    problem: Exception
    try:
        return work(db), None
    except sqlite3.Error as exc:
        problem = exc
    if not is_busy(problem):
        try:
            moved = db.replace_if_damaged(None)
            if moved is not None:
                return work(db), moved.name
        except (sqlite3.Error, OSError) as exc:
            problem = exc
    raise AnalyticsUnavailable(f"The analytics file {db.path.name} cannot be read ({problem}); searches are "
                               "served as usual. See the server log and /healthz.")


def _csv_rows(table: str, db: AnalyticsDB, period: Period) -> tuple[list[str], list[list]]:
    def query_row(row: QueryRow) -> list:
        return [row.query, row.searches, row.zero_results, row.relaxed, row.clicks,
                "" if row.ctr is None else f"{row.ctr:.4f}",
                "" if row.avg_rank is None else f"{row.avg_rank:.2f}", row.last_seen]

    query_header = ["query", "searches", "zero_results", "relaxed", "clicks", "ctr", "avg_click_rank", "last_seen"]
    if table == "top":
        return query_header, [query_row(r) for r in db.top_queries(period, CSV_ROWS)]
    if table == "noclick":
        return query_header, [query_row(r) for r in db.no_click_queries(period, CSV_ROWS)]
    if table == "zero":
        rows = []
        for r in db.zero_result_queries(period, CSV_ROWS):
            hint = dictionary_hint(r.query, searches=r.searches)
            rows.append([r.query, r.searches, r.zero_results, r.relaxed, r.last_seen, " / ".join(hint["words"]),
                         hint["entry"], hint["withheld"]])
        return ["query", "unfound_searches", "zero_results", "partial_only", "last_seen", "segmented_as",
                "user_dict_entry", "user_dict_withheld"], rows
    if table == "filtered":
        return (["query", "filtered_out_searches", "last_seen"],
                [[r.query, r.searches, r.last_seen] for r in db.filtered_out_queries(period, CSV_ROWS)])
    if table == "corrections":
        return (["typed", "searched_instead", "searches"],
                [[typed, searched, n] for typed, searched, n in db.corrections(period, CSV_ROWS)])
    if table in ("offered", "refined"):
        header = ["typed", "offered" if table == "offered" else "searched_next", "searches"]
        return header, [[typed, meant, n] for typed, meant, n in db.slips(period, table, CSV_ROWS)]
    return (["day", "searches", "zero_results", "clicks"],
            [[d.day, d.searches, d.zero_results, d.clicks] for d in db.daily(period)])


@blueprint.get("/admin/analytics.csv")
@costly("export")
def analytics_csv():
    """One table of the page as CSV (UTF-8 with BOM for Excel).

    ``table=top|zero|noclick|daily|filtered|corrections|offered|refined``."""
    denied = _denied()
    if denied is not None:
        return denied
    table = request.args.get("table", "top")
    if table not in TABLES:
        raise InvalidParameter(f"table must be one of {', '.join(TABLES)}; got {table[:40]!r}.", param="table")
    period = _period()
    (header, rows), _ = _read(lambda db: _csv_rows(table, db, period))
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(value) if isinstance(value, str) else value for value in row])
    name = f"search-analytics-{table}-{period.start.isoformat()}_{period.end.isoformat()}.csv"
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    return response


@blueprint.get("/admin/docs/<name>")
def docs(name: str):
    """The project's docs (e.g. RELEVANCE.md: synonyms, dictionary), as text, for staff."""
    denied = _denied()
    if denied is not None:
        return denied
    path = DOCS_DIR / name
    if "/" in name or not name.endswith(".md") or not path.is_file():
        raise NotFound(f"No document {name!r} here; the docs are in the repository's docs/ folder.")
    response = Response(path.read_text("utf-8"), mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return response
