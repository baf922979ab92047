"""readers: files read by many threads at once, segments opened once per process.

The engine's threads share one searcher, so every file under it is read concurrently at
different positions; these tests pin the file layer to Whoosh's own reading of the same
bytes and then hammer a shared searcher from several threads against answers computed
one at a time.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import threading
from array import array

import pytest
from whoosh.filedb.structfile import StructFile

from search_service.article import Article
from search_service.engine import indexer
from search_service.engine.backend.readers import MappedFile, MappedStorage, PositionalBuffer, SegmentFiles
from search_service.engine.request import SearchRequest
from search_service.engine.searcher import EngineOptions, SearchEngine
from search_service.engine.store import IndexStore


def structured(data: bytes) -> tuple[MappedFile, StructFile]:
    """The same bytes as our shared file and as Whoosh's plain one."""
    return MappedFile(PositionalBuffer(data)), StructFile(io.BytesIO(data))


def test_reads_agree_with_whoosh_structfile():
    sink = StructFile(io.BytesIO())
    sink.write_int(-7)
    sink.write_varint(300)
    sink.write_string(b"abc")
    sink.write_pickle({"ids": list(range(50)), "text": "高新区"})
    sink.write_pickle((1, 2.5, None))
    sink.write_array(array("i", [1, -2, 3]))
    sink.write_long(2**40)
    data = sink.file.getvalue()
    ours, theirs = structured(data)
    for f in (ours, theirs):
        f.seek(0)
    for method in ("read_int", "read_varint", "read_string", "read_pickle", "read_pickle"):
        assert getattr(ours, method)() == getattr(theirs, method)()
        assert ours.tell() == theirs.tell()
    assert ours.read_array("i", 3) == theirs.read_array("i", 3)
    assert ours.read_long() == theirs.read_long() == 2**40
    assert ours.read() == theirs.read() == b""
    assert ours.get_int(0) == theirs.get_int(0) == -7
    offset = data.index(b"abc")
    assert ours.get(offset, 3) == b"abc"
    end = len(data) - 8 - 12
    assert ours.get_array(end, "i", 3) == theirs.get_array(end, "i", 3)


def test_a_pickle_longer_than_the_window_and_lines_and_windows():
    big = {"body": "智慧城市" * 5000}
    data = pickle.dumps(big, 2) + pickle.dumps("next", 2) + b"one\ntwo\n"
    mapped = MappedFile(PositionalBuffer(data))
    assert mapped.read_pickle() == big and mapped.read_pickle() == "next"
    assert mapped.readline() == b"one\n" and mapped.readline() == b"two\n" and mapped.readline() == b""
    window = mapped.subset(len(data) - 8, 8)
    assert window.read(4) == b"one\n" and window.readline() == b"two\n"
    assert mapped.tell() == len(data)  # the window's position is its own
    with pytest.raises((EOFError, pickle.UnpicklingError)):  # as from a truncated file
        MappedFile(PositionalBuffer(pickle.dumps(big, 2)[:-100])).read_pickle()


def test_each_thread_reads_from_its_own_position():
    data = bytes(range(256)) * 64
    shared = MappedFile(PositionalBuffer(data))
    barrier = threading.Barrier(4)
    errors: list[str] = []

    def reader(start: int) -> None:
        for round_ in range(200):
            shared.seek(start + round_)
            barrier.wait()  # every thread has moved "the" position before anyone reads
            got = shared.read(16)
            if got != data[start + round_:start + round_ + 16]:
                errors.append(f"{start}/{round_}")

    threads = [threading.Thread(target=reader, args=(start,)) for start in (0, 1000, 5000, 9000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors[:5]


def test_mapped_files_are_read_without_the_descriptor_and_empty_files_open(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"abcdef")
    (tmp_path / "empty.bin").write_bytes(b"")
    storage = MappedStorage(tmp_path)
    mapped = storage.open_file("data.bin")
    os.unlink(tmp_path / "data.bin")  # as a commit deletes an older segment's files
    assert mapped.read(6) == b"abcdef"
    assert storage.open_file("empty.bin").read() == b""


def test_a_segments_files_mapped_at_open_stay_there_after_deletion(tmp_path):
    (tmp_path / "MAIN_x.a.col").write_bytes(b"column")
    files = SegmentFiles(tmp_path, ["MAIN_x.a.col"])
    os.unlink(tmp_path / "MAIN_x.a.col")  # a merge deleted the segment meanwhile
    assert files.file_exists("MAIN_x.a.col") and files.file_length("MAIN_x.a.col") == 6
    first, second = files.open_file("MAIN_x.a.col"), files.open_file("MAIN_x.a.col")
    assert first.read(3) == b"col" and second.read() == b"column"  # positions of their own
    assert not files.file_exists("MAIN_x.b.col")


def test_threads_sharing_one_searcher_get_the_answers_of_one_thread(tmp_path, jieba_cache):
    topics = ["智慧城市", "产业园区", "招商引资", "科技创新", "乡村振兴", "数字经济", "生态环境", "人才政策"]
    store = IndexStore(tmp_path / "index")
    indexer.rebuild(store, [Article(f"a{i}", f"{topics[i % 8]}第{i}期", f"{topics[i % 8]}与{topics[(i * 3) % 8]}"
                                    f"的规划案例{i}。" * (1 + i % 5), "高新院新闻") for i in range(240)])
    for i in range(6):  # several segments, one with deletions
        indexer.update(store, [Article(f"a{i * 7}", f"{topics[i]}更新", f"{topics[i]}更新内容", "政策解读")])
    queries = topics + [f"{a} {b}" for a, b in zip(topics, topics[1:])] + ["规划案例", "更新内容", "第1期"]
    engine = SearchEngine(store.root, EngineOptions(cache_entries=0, correction=False))
    try:
        def answer(q: str) -> tuple:
            results = engine.search(SearchRequest(q=q, page_size=20))
            return results.total, [(h.id, h.title, h.snippet) for h in results.hits]

        expected = {q: answer(q) for q in queries}
        related = engine.similar("a1").to_json()
        assert related["similar"]
        mismatches: list[str] = []

        def hammer(offset: int) -> None:
            for round_ in range(1):
                for q in queries[offset:] + queries[:offset]:
                    if answer(q) != expected[q]:
                        mismatches.append(f"{q} (thread {offset}, round {round_})")
            if engine.similar("a1").to_json() != related:
                mismatches.append(f"similar (thread {offset})")

        threads = [threading.Thread(target=hammer, args=(k,)) for k in range(6)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible: between a seek and its read
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        finally:
            sys.setswitchinterval(interval)
        assert not mismatches, mismatches[:5]
    finally:
        engine.close()
