"""The index the correction benchmark runs on: a deterministic sample of ``../shared/corpora``.

Kept apart from :mod:`bench.correction` so the (slow) build can run on its own::

    .venv/bin/python -m bench.correction_index [--sample 1]

The index is the site's full size by default (every article of the corpora: the correction's
evidence and costs depend on the index's size). It is cached under ``bench/out/correction/`` and
rebuilt when the sample or the files that define the index format change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

from . import common

WORK_DIR = common.OUT_DIR / "correction"
DEFAULT_SAMPLE = 1.0
#: Source files whose changes make a cached index stale (paths in the package; a missing one is an error).
FORMAT_FILES = ("engine/schema.py", "engine/documents.py", "engine/writer.py", "engine/backend/segments.py",
                "text/analysis.py", "text/segmenter.py", "text/pinyin.py", "text/cleaning.py", "text/data/user_dict.txt",
                "ingest/driver.py", "ingest/raw.py", "ingest/jsonl.py")


def _fingerprint(sample: common.Sample) -> str:
    import search_service

    package = Path(search_service.__file__).parent
    digest = hashlib.sha256(sample.key().encode())
    missing = [n for n in FORMAT_FILES if not (package / n).is_file()]
    if missing:
        sys.exit(f"bench.correction_index: FORMAT_FILES names files that do not exist: {', '.join(missing)}")
    for name in FORMAT_FILES:
        digest.update((package / name).read_bytes())
    for path in common.corpus_files(sample.corpora):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def prepare_index(sample: common.Sample, rebuild: bool = False) -> tuple[Path, dict]:
    """The cached index of ``sample`` (built with one process when missing or stale)."""
    from search_service.engine import indexer
    from search_service.engine.store import IndexStore

    root = WORK_DIR / f"index-{sample.key()}"
    meta_path = root.with_suffix(".json")
    fingerprint = _fingerprint(sample)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if not rebuild and meta.get("fingerprint") == fingerprint and IndexStore(root).current_name():
        return root, meta | {"reused": True}
    shutil.rmtree(root, ignore_errors=True)
    common.initialize_analysis()
    loaded = common.load_articles(sample)
    print(f"bench.correction: indexing {loaded.count:,} articles ({sample.describe()}) …", file=sys.stderr, flush=True)
    result = indexer.rebuild(IndexStore(root), loaded.articles, procs=1, keep=1)
    meta = {"fingerprint": fingerprint, "articles": loaded.count, "per_file": loaded.per_file,
            "megabytes": round(result.megabytes, 2), "build_seconds": round(result.seconds, 1),
            "sample": sample.describe(), "built_at": common.now_utc()}
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return root, meta | {"reused": False}


def add_shared_argument(parser) -> None:
    """``--shared DIR``: where ``shared`` is when it does not sit next to the checkout (a worktree)."""
    parser.add_argument("--shared", type=Path, default=None, metavar="DIR",
                        help="the shared data folder (default: ../shared beside the project)")


def use_shared(folder: Path | None) -> None:
    """Point the benchmarks at ``folder`` instead of ``../shared``."""
    if folder is not None:
        common.SHARED = folder
        common.CORPORA_DIR = folder / "corpora"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.correction_index", description=__doc__.splitlines()[0])
    common.add_sample_arguments(parser, fraction=DEFAULT_SAMPLE)
    add_shared_argument(parser)
    parser.add_argument("--rebuild", action="store_true", help="rebuild even when the cached index is current")
    args = parser.parse_args(argv)
    use_shared(args.shared)
    root, meta = prepare_index(common.sample_from_args(args), args.rebuild)
    print(json.dumps({"index": str(root), **meta}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
