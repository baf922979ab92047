"""Whole builds: articles analyzed and written as segments in worker processes.

:func:`build` runs the analysis (``documents.analyze``) and the segment builder
(``backend.segments.SegmentBuilder``) in ``procs`` worker processes that each write whole
segments; the parent only reads articles, hands them out in batches and writes the table
of contents. Every segment's documents are consecutive articles of one worker.

A worker's segment is bounded by its memory (``segment_mb``), so a large build writes many
(20 for the site's 42k articles), and a search over 20 segments costs ~1.4x one over the same
documents in one (a term looked up in every segment, its postings decoded per segment). The
parent therefore ends the build by merging them into one segment
(``backend.segments.merge_segments``: a build's segments have no deletions, so their posting
blocks are copied, not re-encoded: ~20 s for the 42k articles, against a ~140 s build), before
the table of contents is written: nothing but the merged segment is ever visible.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from ..article import Article
from .backend.index import index_schema
from .backend.segments import SegmentBuilder, commit_segments, merge_segments
from .documents import analyze

log = logging.getLogger(__name__)

__all__ = ["BATCH_ARTICLES", "BuildFailed", "build", "segment_megabytes"]

#: Articles per batch handed to a worker process.
BATCH_ARTICLES = 64


class BuildFailed(RuntimeError):
    """A worker process failed; the message carries its traceback."""


def build(
    index_dir: Path | str,
    articles: Iterable[Article],
    *,
    procs: int = 1,
    segment_mb: float = 32.0,
    on_article: Callable[[Article], None] | None = None,
    one_segment: bool = True,
) -> tuple[int, int]:
    """Write ``articles`` as the segments of the (new, empty) index in ``index_dir``.

    Each process starts a new segment once its current one holds ``segment_mb`` MB of
    text (which bounds its memory); with ``one_segment`` they are merged into one at the
    end. Returns (documents, bytes of text). Nothing is visible in the index before the
    final table of contents is written.
    """
    folder = str(index_dir)
    if procs <= 1:
        segments, count, size = _build_here(folder, articles, segment_mb, on_article)
    else:
        segments, count, size = _build_in_workers(folder, articles, procs, segment_mb, on_article)
    if one_segment and len(segments) > 1:
        # The workers are gone: the merge reads their segments' files (mapped) and writes the
        # merged one beside them, ranges of terms in as many processes as the build had; the
        # commit lists it alone and deletes their files.
        log.info("merging the build's %d segments into one …", len(segments))  # the progress bar is done
        started = time.perf_counter()
        merged, _ = merge_segments(folder, segments, folder, index_schema(), procs=procs)
        log.info("merged %d segments into one in %.1f s", len(segments), time.perf_counter() - started)
        segments = [merged]
    commit_segments(folder, segments)
    return count, size


def _build_here(folder, articles, segment_mb, on_article):
    segments = []
    count = size = 0
    builder = SegmentBuilder(folder)
    limit = segment_mb * 1e6
    try:
        for article in articles:
            builder.add(analyze(article))
            count += 1
            if on_article:
                on_article(article)
            if builder.text_bytes >= limit:
                size += builder.text_bytes
                segments.append(builder.finish())
                builder = SegmentBuilder(folder)
        if builder.doc_count:
            size += builder.text_bytes
            segments.append(builder.finish())
        else:
            builder.cancel()
    except BaseException:
        builder.cancel()
        raise
    return segments, count, size


def _worker(number: int, folder: str, segment_mb: float, inbox, outbox) -> None:
    """Worker process: build segments from the batches in ``inbox`` until ``None``."""
    try:
        builder = SegmentBuilder(folder)
        first_batch = None
        limit = segment_mb * 1e6
        parent = os.getppid()
        while True:
            try:
                item = inbox.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the build was killed (kill -9): stop too
                    builder.cancel()
                    return
                continue
            if item is None:
                break
            sequence, batch = item
            if first_batch is None:
                first_batch = sequence
            for article in batch:
                builder.add(analyze(article))
            if builder.text_bytes >= limit:
                outbox.put(("segment", number, first_batch, builder.text_bytes, builder.finish()))
                builder, first_batch = SegmentBuilder(folder), None
        if builder.doc_count:
            outbox.put(("segment", number, first_batch, builder.text_bytes, builder.finish()))
        else:
            builder.cancel()
        outbox.put(("done", number, None, 0, None))
    except BaseException:  # reported to the parent, which fails the build
        outbox.put(("error", number, None, 0, traceback.format_exc()))


def _build_in_workers(folder, articles, procs, segment_mb, on_article):
    # fork: the workers inherit the loaded jieba dictionary and OpenCC instead of loading
    # them again (several seconds each).
    context = multiprocessing.get_context("fork")
    outbox = context.Queue()
    # Bounded inboxes: the reader never runs far ahead of the workers (memory stays flat).
    inboxes = [context.Queue(maxsize=4) for _ in range(procs)]
    workers = [context.Process(target=_worker, name=f"index-build-{i}", daemon=True,
                               args=(i, folder, segment_mb, inboxes[i], outbox))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    found: list[tuple[int, int, object]] = []
    done = 0
    count = 0
    size = 0

    def drain(block: bool) -> None:
        nonlocal done, size
        while True:
            try:
                kind, number, first, text_bytes, payload = outbox.get(block, timeout=1.0 if block else None) \
                    if block else outbox.get_nowait()
            except queue.Empty:
                return
            if kind == "error":
                raise BuildFailed(f"index build worker {number} failed:\n{payload}")
            if kind == "segment":
                found.append((first, number, payload))
                size += text_bytes
            else:
                done += 1
            if block:
                return

    def send(number: int, item) -> None:
        while True:
            try:
                inboxes[number].put(item, timeout=1.0)
                return
            except queue.Full:
                drain(False)
                check_alive(number)

    def check_alive(number: int) -> None:
        if not workers[number].is_alive():
            drain(False)
            raise BuildFailed(f"index build worker {number} exited (code {workers[number].exitcode})")

    def send_batch(sequence: int, batch: list[Article]) -> None:
        # Round robin while every inbox has room (small builds stay deterministic); a worker
        # busy writing a segment (seconds) gets skipped instead of stalling the reader and,
        # through it, every other worker.
        first = sequence % procs
        while True:
            for step in range(procs):
                number = (first + step) % procs
                try:
                    inboxes[number].put_nowait((sequence, batch))
                    return
                except queue.Full:
                    continue
            try:
                inboxes[first].put((sequence, batch), timeout=0.05)
                return
            except queue.Full:
                drain(False)
                for number in range(procs):
                    check_alive(number)

    try:
        batch: list[Article] = []
        sequence = 0
        for article in articles:
            batch.append(article)
            count += 1
            if on_article:
                on_article(article)
            if len(batch) >= BATCH_ARTICLES:
                send_batch(sequence, batch)
                sequence += 1
                batch = []
            drain(False)
        if batch:
            send_batch(sequence, batch)
        for number in range(procs):
            send(number, None)
        while done < procs:
            drain(True)
            for number, worker in enumerate(workers):
                if not worker.is_alive() and worker.exitcode not in (0, None) and done < procs:
                    drain(False)
                    if done < procs:
                        raise BuildFailed(f"index build worker {number} exited (code {worker.exitcode})")
        for worker in workers:
            worker.join()
    except BaseException:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        for worker in workers:
            worker.join()
        raise
    found.sort(key=lambda item: (item[0], item[1]))
    return [segment for _, _, segment in found], count, size


#: Memory of a segment builder per MB of text it holds (measured: ~36 MB at 1.7 MB of news and laws,
#: terms growing more slowly than postings), so memory_mb=256 makes segments of ~11 MB of text.
MEMORY_PER_TEXT_MB = 24.0


def segment_megabytes(memory_mb: int) -> float:
    """Text per segment so that one builder stays within ``memory_mb`` (setting index_memory_mb)."""
    return max(1.0, memory_mb / MEMORY_PER_TEXT_MB)
