"""Reproducible benchmarks: our engine against a naive Whoosh + jieba baseline, in the same run.

Run from the project root::

    .venv/bin/python -m bench.indexing      # index build throughput, memory, size, profile
    .venv/bin/python -m bench.search        # query latency in process and over HTTP

Both read ``../shared/corpora`` (never copied into the repository), keep raw numbers
under ``bench/out/`` (git-ignored) and rewrite their own section of
``docs/BENCHMARKS.md``.
"""
