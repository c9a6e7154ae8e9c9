"""Recipients as pages of columns (issue 18): the same recipients, in the same order, as before.

A send reads its readers a page at a time and hands pages, not a `Recipient` per reader, to the
send loop and to batch-call channels; whoever iterates a page gets the very same `Recipient`s.
"""

from __future__ import annotations

from publisher.delivery.send import _chunks
from publisher.model import Recipient, Recipients, emails_of


def people(start: int, count: int) -> list[Recipient]:
    """Recipients with every field set, names and mailto links on some."""
    return [Recipient(f"r{i}@example.com", f"R {i}" if i % 2 else "", f"https://x.example/u?t={i}",
                      f"mailto:l@example.com?subject={i}" if i % 3 else "", i + 1)
            for i in range(start, start + count)]


def test_a_page_is_its_recipients_column_by_column() -> None:
    listed = people(0, 7)
    page = Recipients.of(listed)
    assert list(page) == listed and len(page) == 7 and page[3] == listed[3]
    assert list(page[2:5]) == listed[2:5] and isinstance(page[2:5], Recipients)
    assert list(page[:2] + page[2:]) == listed
    assert list(page.picked([5, 0, 3])) == [listed[5], listed[0], listed[3]]
    assert list(page.picked([])) == [] and list(Recipients()) == []
    assert page.ids == tuple(r.id for r in listed) and page.urls[1] == listed[1].unsubscribe_url
    assert emails_of(page) == page.emails == tuple(r.email for r in listed)
    assert list(emails_of(listed)) == [r.email for r in listed]


def test_chunks_pass_whole_pages_and_cut_anything_else_to_size_in_order() -> None:
    whole = [Recipients.of(people(0, 4)), Recipients.of(people(4, 4))]
    assert [chunk is page for chunk, page in zip(_chunks(whole, 4), whole, strict=True)] == [
        True, True]
    streams = [
        [Recipients.of(people(0, 3)), Recipients.of(people(3, 3)), Recipients.of(people(6, 1))],
        people(0, 7),  # one by one, as tests and proofs give them
        [*people(0, 2), Recipients.of(people(2, 3)), *people(5, 1), Recipients.of(people(6, 1))],
        [Recipients(), *people(0, 7), Recipients()],
    ]
    for stream in streams:
        for size in (1, 2, 4, 7, 1000):
            chunks = list(_chunks(stream, size))
            assert [r for chunk in chunks for r in chunk] == people(0, 7)
            assert all(len(chunk) == size for chunk in chunks[:-1]) and 0 < len(chunks[-1]) <= size
    assert list(_chunks([], 3)) == [] and list(_chunks([Recipients()], 3)) == []
