"""The ``search-service`` command: a thin shell over ingest, indexer, searcher and web."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .config import SETTINGS_BY_NAME, Settings, explain_settings, load_settings, render_report, settings_help
from .engine import indexer
from .engine.store import IndexStore
from .errors import SearchError
from .ingest import SUPPORTED_SUFFIXES, Ingest
from .text import analysis

log = logging.getLogger("search_service")

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE: the reader stopped reading (`| head`)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command has help (checked by a test)."""
    parser = argparse.ArgumentParser(
        prog="search-service",
        description="Chinese full-text site search: build the index, query it, serve it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default: $SEARCH_SERVICE_CONFIG, else ./config.toml)")
    parser.add_argument("--index-dir", metavar="DIR", help="data folder holding the index generations")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="add or replace articles; --rebuild builds a new generation",
                                description="Read JSON Lines (.jsonl, .jsonl.gz), page text (.txt) and HTML "
                                "files or folders, and index the valid articles.")
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (walked recursively)")
    index.add_argument("--rebuild", action="store_true",
                       help="build a complete new generation from PATHs and publish it atomically; refuses to "
                       "drop live articles absent from PATHs (see reindex, --drop-missing)")
    index.add_argument("--drop-missing", action="store_true",
                       help="with --rebuild: drop live articles absent from PATHs (written through the API or an "
                       "earlier run) instead of refusing")
    index.add_argument("--strict", action="store_true", help="commit nothing when any record is invalid")
    index.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    index.add_argument("--category", metavar="NAME", help="category for every article read (overrides the files)")
    index.add_argument("--default-category", metavar="NAME",
                       help="category for page/HTML files that name none (setting default_category)")
    index.add_argument("--id", dest="id_override", metavar="ID", help="id for a single page file (default: its name)")
    index.add_argument("--workers", type=int, metavar="N",
                       help="processes for a rebuild (setting index_workers; 0 = all cores)")
    index.add_argument("--allow-untitled", action="store_true", default=None,
                       help="accept records without a title (setting allow_untitled)")

    search = commands.add_parser("search", help="print the top hits of a query",
                                 description="Search from the command line, as /api/search does.")
    search.add_argument("query", nargs="?", default="", help='query text: words, "phrase", OR, -word, title:')
    search.add_argument("--category", action="append", default=[], metavar="NAME",
                        help="only this category (repeatable: any of them)")
    search.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="on or after this date")
    search.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="on or before this date")
    search.add_argument("--sort", choices=("relevance", "date_desc", "date_asc"), default=None, help="order")
    search.add_argument("--limit", type=int, default=10, metavar="N", help="hits to print (default 10)")
    search.add_argument("--json", action="store_true", help="print the API's JSON instead of text")

    stats = commands.add_parser("stats", help="document count, categories, date range, generation")
    stats.add_argument("--json", action="store_true", help="print JSON")

    serve = commands.add_parser("serve", help="serve the web app and API with waitress")
    serve.add_argument("--host", help="interface to listen on (setting host)")
    serve.add_argument("--port", type=int, help="port (setting port)")
    serve.add_argument("--threads", type=int, help="worker threads (setting threads)")
    serve.add_argument("--workers", type=int, dest="serve_workers", metavar="N",
                       help="server processes sharing the socket; 0 = one per core (setting workers)")

    delete = commands.add_parser("delete", help="delete articles by id from the live generation")
    delete.add_argument("ids", nargs="+", metavar="ID", help="article ids")

    words = commands.add_parser("words", help="propose new dictionary words mined from the corpus",
                                description="List frequent character sequences that jieba splits but that "
                                "behave like words, for staff to review and add to the user dictionary.")
    words.add_argument("paths", nargs="*", metavar="PATH",
                       help="files or folders to read (default: the articles in the index)")
    words.add_argument("--limit", type=int, default=5000, metavar="N", help="articles to read (default 5000)")
    words.add_argument("--min-count", type=int, default=5, metavar="N", help="least occurrences (default 5)")
    words.add_argument("--top", type=int, default=50, metavar="N", help="candidates to print (default 50)")
    words.add_argument("--dict-format", action="store_true",
                       help="print only user-dictionary lines (word frequency n)")

    reindex = commands.add_parser(
        "reindex", help="rebuild the live articles with the current dictionary, analyzer and settings",
        description="Build a new generation from the live generation's own stored articles (no source files) "
        "and publish it atomically; writes made meanwhile are carried over and searches are served throughout. "
        "Run it after changing the user dictionary, synonyms of the analyzer, or an index setting.")
    reindex.add_argument("--workers", type=int, metavar="N",
                         help="processes (setting index_workers; 0 = all cores)")

    commands.add_parser("optimize", help="merge all segments of the live generation into one",
                        description="Merge every segment of the live generation (and drop deleted documents). "
                        "A running server merges in the background by itself; this is for a quiet hour. "
                        "Writes and searches go on meanwhile.")

    commands.add_parser("rollback", help="republish the previous generation, keeping writes made since",
                        description="Republish the generation before the live one. Changes written into the live "
                        "generation after it was published (write API, index, delete) are carried into the "
                        "generation rolled back to, so no acknowledged write is lost.")

    crawl = commands.add_parser(
        "crawl", help="index a website by its address; run again to keep the index in step",
        description="Crawl the site of URL (its host, its www. twin and crawl_allowed_hosts; robots.txt obeyed, "
        "sitemaps and links followed) and index its article pages. Without --rebuild, articles are added, "
        "replaced and removed in the live generation, committed at least every crawl_commit_seconds, and pages "
        "unchanged since the last run are not downloaded again (conditional requests). Exits 0 when every page "
        "was fine, 1 when any page failed (listed by URL), 2 when the crawl could not run or stopped before its "
        "end with nothing more written (robots.txt unreadable, the start URL redirecting off the site, a bad URL "
        "or setting, a rebuild that would drop live articles, an index or state that cannot be written).")
    crawl.add_argument("url", metavar="URL", help="the site's address, e.g. http://www.achie.org/")
    crawl.add_argument("--delay", type=_non_negative_float, metavar="SECONDS",
                       help="seconds between requests (setting crawl_delay; robots.txt Crawl-delay wins if longer, "
                       "up to 3600)")
    crawl.add_argument("--max-pages", type=_positive_int, metavar="N",
                       help="stop after fetching N pages (setting crawl_max_pages)")
    crawl.add_argument("--rebuild", action="store_true",
                       help="build a new generation from the crawl alone and publish it atomically; refuses to "
                       "drop live articles the crawl did not find gone (see --drop-missing)")
    crawl.add_argument("--drop-missing", action="store_true",
                       help="with --rebuild: also drop live articles the crawl did not find gone (404/410, "
                       "redirected away), such as those written through the API or not reached, instead of refusing")
    config = commands.add_parser(
        "config", help="every setting's effective value and where it came from (secrets masked)",
        description="Show each setting's effective value and its source: the default, the config file (with its "
        "line), a SEARCH_SERVICE_* environment variable or a command-line flag (--index-dir); a lower layer it "
        "overrides is named too. Secrets (api_tokens, admin_password, passwords inside URLs) are masked.")
    config.add_argument("names", nargs="*", metavar="NAME", help="only these settings (default: all)")
    config.add_argument("--json", action="store_true", help="print JSON: one object per setting")
    config.add_argument("--defaults", action="store_true",
                        help="print the reference instead: every setting's type, default, variable and help")

    rules = commands.add_parser(
        "rules", help="export or import the staff rules (curations, synonyms, hot searches, words) as JSON",
        description="Move every rule of the relevance desk (docs/ADMIN.md) as one JSON document. An import checks "
        "the whole file first and lists every problem as FILE:LINE; only a valid file replaces the rules, as one "
        "change the desk's history can undo.")
    rules_actions = rules.add_subparsers(dest="action", required=True, metavar="ACTION")
    rules_export = rules_actions.add_parser("export", help="write every rule to FILE",
                                            description="Write every staff rule to FILE (UTF-8 JSON).")
    rules_export.add_argument("file", metavar="FILE", help="the JSON file to write")
    rules_import = rules_actions.add_parser("import", help="replace every rule with those of FILE",
                                            description="Replace every staff rule with those of FILE (made by "
                                            "`rules export`); nothing changes when FILE has a problem.")
    rules_import.add_argument("file", metavar="FILE", help="the JSON file to read")
    return parser


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds as a number, got {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    Output cut short by its reader (``search-service search … | head``) ends the command quietly with
    status 141, as a program killed by SIGPIPE would, never with a traceback.
    """
    try:
        status = _main(argv)
        sys.stdout.flush()  # inside the try: a pipe closed early fails here, not at interpreter exit
        return status
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # a pipe or socket other than stdout: a real error, with its traceback
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _stdout_reader_gone() -> bool:
    """Whether stdout's reader has gone away (a pipe whose read end is closed polls as an error)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no descriptor (captured output): it was stdout's
        return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail (and print) again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a descriptor (captured in tests)
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "config":
            return cmd_config(args)
        settings = _settings(args)
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            stream=sys.stderr)
        analysis.initialize(settings.cache_dir, settings.user_dict or None)
        if args.command in ("index", "reindex"):
            from .rules.words import prepare_segmenter

            # The desk's dictionary words: the accepted ones for a full build, else those in effect.
            args.desk_words = prepare_segmenter(settings.index_dir,
                                                build=args.command == "reindex" or bool(args.rebuild))
        return COMMANDS[args.command](args, settings)
    except SearchError as exc:
        print(f"search-service: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("search-service: interrupted; nothing was published.", file=sys.stderr)
        return 130


#: The command-line flag of each setting a flag overrides (for ``search-service config``).
FLAGS = {
    "index_dir": "--index-dir", "host": "--host", "port": "--port", "threads": "--threads",
    "index_workers": "--workers", "workers": "--workers", "default_category": "--default-category",
    "allow_untitled": "--allow-untitled",
}


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, overrides=_overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {
        "index_dir": args.index_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "threads": getattr(args, "threads", None),
        "index_workers": getattr(args, "workers", None),
        "workers": getattr(args, "serve_workers", None),
        "default_category": getattr(args, "default_category", None),
        "allow_untitled": getattr(args, "allow_untitled", None),
    }


# --------------------------------------------------------------------------- commands


def cmd_config(args: argparse.Namespace) -> int:
    """Every setting's effective value and its source (or, with --defaults, the reference table)."""
    if args.defaults:
        print(settings_help(), end="")
        return EXIT_OK
    unknown = [name for name in args.names if name not in SETTINGS_BY_NAME]
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name.lower(), list(SETTINGS_BY_NAME), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        print(f"search-service: error: unknown setting {', '.join(hints)}; `search-service config` lists them all.",
              file=sys.stderr)
        return EXIT_ERROR
    report = explain_settings(args.config, overrides=_overrides(args), flags=FLAGS)
    if args.json:
        wanted = set(args.names) or set(SETTINGS_BY_NAME)
        print(json.dumps({
            "config_file": str(report.config_path) if report.config_path else None,
            "config_chosen_by": report.config_chosen_by or None,
            "settings": [e.to_json() for e in report.entries if e.setting.name in wanted],
        }, ensure_ascii=False, indent=2))
        for entry in report.secrets_in_file():
            print(f"search-service: warning: {entry.setting.name} is written in the config file; secrets belong in "
                  f"the environment ({entry.setting.env_var}).", file=sys.stderr)
    else:
        print(render_report(report, args.names or None), end="")
    return EXIT_OK


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    def new_ingest() -> Ingest:
        # log_problems=False: this command prints each problem itself, once.
        return Ingest(settings.default_category, args.category, id_override=args.id_override,
                      allow_untitled=settings.allow_untitled, log_problems=False,
                      max_id_length=settings.max_id_length, max_article_kb=settings.max_article_kb)

    if args.rebuild and not args.drop_missing and not args.dry_run:
        _refuse_early_to_drop(args, settings, new_ingest)
    ingest = new_ingest()
    articles = ingest.read(args.paths)
    report = ingest.report

    def report_problems() -> None:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        for skipped in report.skipped:
            print(f"{skipped}: skipped: not a supported file type ({', '.join(SUPPORTED_SUFFIXES)})",
                  file=sys.stderr)

    if args.dry_run:
        count = sum(1 for _ in articles)
        report_problems()
        print(f"dry run: {report.summary()}; {count} would be indexed, nothing written", file=sys.stderr)
        return EXIT_OK if report.ok else EXIT_REJECTED

    store = IndexStore(settings.index_dir)
    progress = indexer.Progress()
    commit_if = (lambda: report.ok) if args.strict else (lambda: True)
    if args.rebuild:
        workers = settings.index_workers or os.cpu_count() or 1
        result = indexer.rebuild(store, articles, procs=workers, memory_mb=settings.index_memory_mb,
                                 keep=settings.keep_generations, progress=progress, should_commit=commit_if,
                                 drop_missing=args.drop_missing)
    else:
        result = indexer.update(store, articles, memory_mb=settings.index_memory_mb, progress=progress,
                                lock_timeout=settings.lock_timeout, should_commit=commit_if)
    report_problems()
    if result.committed and args.rebuild:
        from .rules.words import record_build

        record_build(settings.index_dir, args.desk_words)
    if result.committed:
        print(f"{report.summary()}; indexed {result.indexed} into generation {result.generation} "
              f"({result.megabytes:.1f} MB in {result.seconds:.1f} s, {result.mb_per_second:.2f} MB/s)",
              file=sys.stderr)
        if result.dropped:
            print(f"--drop-missing: {result.dropped} live article(s) absent from the files were dropped",
                  file=sys.stderr)
    else:
        print(f"{report.summary()}; --strict: nothing committed because of the problems above", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_REJECTED


#: The demo corpus `make serve` indexes on a machine without an index (absent from an installed package).
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _refuse_early_to_drop(args: argparse.Namespace, settings: Settings, new_ingest: Callable[[], Ingest]) -> None:
    """``index --rebuild PATH`` without ``--drop-missing``: refuse before the build (which segments every
    article: minutes for a large corpus) when live articles are absent from PATH. The files' ids are
    read without analysis; the build checks again at its end for writes made meanwhile."""
    store = IndexStore(settings.index_dir)
    if store.current_name() is None:
        return
    first = new_ingest()
    ids = {article.id for article in first.read(args.paths)}

    def note(missing: list[str]) -> str:
        notes = []
        if SAMPLES.is_dir() and not any(Path(p).resolve() == SAMPLES for p in args.paths):
            quiet = logging.getLogger("search_service.ingest")
            level = quiet.level
            quiet.setLevel(logging.WARNING)  # not "skipped samples/README.md" in the middle of an error
            try:
                samples = {a.id for a in Ingest(settings.default_category, allow_untitled=True,
                                                log_problems=False).read([SAMPLES])}
            finally:
                quiet.setLevel(level)
            if set(missing) <= samples:
                notes.append("They are the bundled samples (`make serve` indexes them when there is no index): to "
                             "replace them with your articles, run this command again with --drop-missing.")
        if first.report.rejected:
            notes.append(f"{first.report.rejected} record(s) of the files were rejected and may be among them: "
                         "`search-service index --dry-run PATH...` lists the problems.")
        return " ".join(notes)

    indexer.refuse_to_drop(store, ids, note=note)


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from .engine.request import Limits, SearchRequest, get_list_from_mapping
    from .engine.searcher import EngineOptions, SearchEngine

    engine = SearchEngine(settings.index_dir, EngineOptions.from_settings(settings))
    params = {"q": args.query, "category": args.category, "date_from": args.date_from,
              "date_to": args.date_to, "sort": args.sort, "page_size": str(max(1, args.limit))}
    limits = dataclasses.replace(Limits.from_settings(settings), max_page_size=max(settings.max_page_size, args.limit))
    request = SearchRequest.from_params(get_list_from_mapping(params), limits)
    try:
        results = engine.search(request)
    finally:
        engine.close()  # non-compound segments: the searcher holds open files
    if args.json:
        print(json.dumps(results.to_json(), ensure_ascii=False, indent=2))
        return EXIT_OK
    relaxed = f" (relaxed: {results.relaxed})" if results.relaxed else ""
    print(f"{results.total} results in {results.took_ms:.1f} ms{relaxed}")
    for hit in results.hits:
        print()
        print(f"{hit.rank}. {_terminal_marks(hit.title_html)}")
        print(f"   {hit.date or '无日期'} · {hit.category or '未分类'} · id {hit.id}"
              + (f" · score {hit.score}" if hit.score is not None else ""))
        print(f"   {_terminal_marks(hit.snippet)}")
    return EXIT_OK


def _terminal_marks(html_text: str) -> str:
    """Escaped HTML with <mark> to terminal text: marks as 【】 (or bold on a tty)."""
    import html

    bold = sys.stdout.isatty()
    text = html_text.replace("<mark>", "\x1b[1;33m" if bold else "【").replace("</mark>", "\x1b[0m" if bold else "】")
    return html.unescape(re.sub(r"\s+", " ", text))


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from .engine.searcher import EngineOptions, SearchEngine

    engine = SearchEngine(settings.index_dir, EngineOptions.from_settings(settings))
    try:
        stats = engine.stats()
    finally:
        engine.close()
    if args.json:
        print(json.dumps(stats.to_json(), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"documents:   {stats.documents}")
    print(f"generation:  {stats.generation} (commit {stats.commit})")
    print(f"index size:  {stats.index_bytes / 1e6:.1f} MB")
    print(f"dates:       {stats.date_min or '-'} … {stats.date_max or '-'} ({stats.undated} undated)")
    if stats.build:
        print(f"built:       {stats.build.get('built_at')}")
    print("categories:")
    for item in stats.categories:
        print(f"  {item.count:>8}  {item.value}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .web.server import serve

    serve(settings)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    store = IndexStore(settings.index_dir)
    found = indexer.delete(store, args.ids, lock_timeout=settings.lock_timeout)
    missing = [i for i in args.ids if i not in found]
    print(f"deleted {len(found)} article(s)", file=sys.stderr)
    for doc_id in missing:
        print(f"{doc_id}: no such article", file=sys.stderr)
    return EXIT_OK if not missing else EXIT_REJECTED


def cmd_words(args: argparse.Namespace, settings: Settings) -> int:
    from itertools import islice

    from .text.wordmining import mine_candidates

    if args.paths:
        ingest = Ingest(settings.default_category, allow_untitled=True, log_problems=False)
        texts = (f"{a.title}\n{a.body}" for a in ingest.read(args.paths))
    else:
        texts = (f"{a.title}\n{a.body}" for a in IndexStore(settings.index_dir).stored_articles())
    candidates = mine_candidates(islice(texts, max(1, args.limit)), min_count=args.min_count, top=args.top)
    if args.dict_format:
        for candidate in candidates:
            print(candidate.dictionary_line())
        return EXIT_OK
    print(f"{'word':<10} {'count':>6} {'left H':>7} {'right H':>7} {'cohesion':>9}  jieba splits it as")
    for c in candidates:
        print(f"{c.word:<10} {c.count:>6} {c.left_entropy:>7} {c.right_entropy:>7} {c.cohesion:>9}  "
              f"{' / '.join(c.jieba_split)}")
    print(f"\n{len(candidates)} candidates. Review them, then add the good ones to the user dictionary "
          "(setting user_dict; `--dict-format` prints ready lines) and rebuild.", file=sys.stderr)
    return EXIT_OK


def cmd_crawl(args: argparse.Namespace, settings: Settings) -> int:
    from .crawl import Crawler, CrawlOptions, CrawlWriteError

    if args.drop_missing and not args.rebuild:
        print("search-service: error: --drop-missing only applies with --rebuild (a crawl without it removes "
              "only the articles whose pages are gone)", file=sys.stderr)
        return EXIT_ERROR
    try:
        options = CrawlOptions.from_settings(settings, args.url, delay=args.delay, max_pages=args.max_pages,
                                             rebuild=args.rebuild, drop_missing=args.drop_missing)
        crawler = Crawler(IndexStore(settings.index_dir), options)
    except ValueError as exc:
        print(f"search-service: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except CrawlWriteError as exc:
        print(f"search-service: error: {exc.message(args.rebuild)}", file=sys.stderr)
        return EXIT_ERROR
    try:
        report = crawler.run()
    except ValueError as exc:  # an invalid crawl_*_selector, met on the first page
        print(f"search-service: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for problem in report.problems:
        print(problem, file=sys.stderr)
    for broken in report.broken_links:
        print(f"{broken.url}: broken link: {broken.reason}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    if report.aborted:
        print(f"search-service: error: {report.aborted}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if report.ok else EXIT_REJECTED


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    result = indexer.rollback(IndexStore(settings.index_dir))
    print(f"generation {result.generation} is live again (replacing {result.replaced}); "
          f"{result.carried} change(s) written since {result.replaced} was published were carried over",
          file=sys.stderr)
    return EXIT_OK


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    store = IndexStore(settings.index_dir)
    workers = settings.index_workers or os.cpu_count() or 1
    result = indexer.reindex(store, procs=workers, memory_mb=settings.index_memory_mb,
                             keep=settings.keep_generations, progress=indexer.Progress())
    from .rules.words import record_build

    record_build(settings.index_dir, args.desk_words)
    print(f"reindexed {result.indexed} live articles into generation {result.generation} "
          f"({result.megabytes:.1f} MB in {result.seconds:.1f} s)", file=sys.stderr)
    return EXIT_OK


def cmd_optimize(args: argparse.Namespace, settings: Settings) -> int:
    from .engine.merging import MergeAbandoned, clean_stale_files, merge
    from .errors import IndexUnavailable

    store = IndexStore(settings.index_dir)
    path = store.current_path()
    if path is None:
        raise IndexUnavailable(f"No index in {store.root}: build one with `search-service index --rebuild PATH`.")
    clean_stale_files(path)
    try:
        result = merge(path, everything=True, memory_mb=settings.index_memory_mb)
    except MergeAbandoned as exc:
        print(f"search-service: error: the merge was abandoned ({exc}); nothing changed. Run it again.",
              file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"search-service: error: the merge failed ({exc.strerror or exc}); nothing changed and its "
              "temporary files were removed. Free disk space and run it again.", file=sys.stderr)
        return EXIT_ERROR
    if result is None:
        print(f"generation {path.name} has a single segment without deletions: nothing to merge", file=sys.stderr)
    else:
        print(f"merged {result.merged_segments} segments ({result.documents} documents) of {result.generation} "
              f"in {result.seconds:.1f} s", file=sys.stderr)
    return EXIT_OK


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from .rules.transfer import run_command

    status = run_command(args.action, args.file, settings.index_dir)
    return {0: EXIT_OK, 1: EXIT_REJECTED}.get(status, EXIT_ERROR)


COMMANDS = {
    "index": cmd_index,
    "rules": cmd_rules,
    "search": cmd_search,
    "stats": cmd_stats,
    "serve": cmd_serve,
    "delete": cmd_delete,
    "rollback": cmd_rollback,
    "reindex": cmd_reindex,
    "optimize": cmd_optimize,
    "words": cmd_words,
    "crawl": cmd_crawl,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
