"""Reproducible benchmarks: our engine against baselines measured in the same run.

Run from the project root::

    .venv/bin/python -m bench.indexing      # index build throughput, memory, size, profile
    .venv/bin/python -m bench.speed         # query latency against tantivy and tuned Whoosh, in process
                                            # and over HTTP, at ~4k and 42k articles (= bench.search)

Both read ``../shared/corpora`` (never copied into the repository), keep raw numbers
under ``bench/out/`` (git-ignored) and rewrite their own section of
``docs/BENCHMARKS.md``.
"""
