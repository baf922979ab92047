"""freshness: one look at the disk per read."""

from __future__ import annotations

import threading

from search_service.freshness import looked, looked_again, one_look


class Source:
    def __init__(self) -> None:
        self.looks = 0

    def look(self) -> int:
        self.looks += 1
        return self.looks


def test_outside_a_scope_every_call_looks():
    source = Source()
    assert [looked(source, source.look) for _ in range(3)] == [1, 2, 3]


def test_within_a_scope_the_first_answer_stands_per_source():
    first, second = Source(), Source()
    with one_look():
        assert [looked(first, first.look) for _ in range(3)] == [1, 1, 1]
        assert looked(second, second.look) == 1
        assert looked_again(first, first.look()) == 2  # an explicit refresh replaces the answer
        assert looked(first, first.look) == 2
    assert looked(first, first.look) == 3  # the scope ended: looking again


def test_scopes_nest_and_belong_to_their_thread():
    source = Source()
    seen = []
    with one_look():
        looked(source, source.look)
        with one_look():
            assert looked(source, source.look) == 2
        assert looked(source, source.look) == 1
        thread = threading.Thread(target=lambda: seen.append(looked(source, source.look)))
        thread.start()
        thread.join()
    assert seen == [3]
