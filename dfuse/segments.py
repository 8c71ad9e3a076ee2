"""Memory segments ``(address, data)``: sorting, joining and the overlap check, in one place.

Every layer that puts bytes at addresses uses this module: the record readers
(:mod:`dfuse.file.convert`), the .dfu model (a target's elements), ``dfuse build`` (its
inputs) and the download planner (:mod:`dfuse.protocol.plan`). So there is one rule (each
address is written at most once, everything below 2**32) and one wording for its errors::

    >>> merge([(0x10, b"cd"), (0x0E, b"ab"), (0x20, b"x")])
    [(14, b'abcd'), (32, b'x')]
    >>> merge([(0x10, b"abc"), (0x11, b"x")], what="inputs")
    Traceback (most recent call last):
    ...
    dfuse.errors.ImageError: inputs overlap: expected each address written once, found \
segment 0 at 0x00000010-0x00000012 and segment 1 at 0x00000011-0x00000011

This module sits at the bottom with :mod:`dfuse.errors`: it imports nothing else of dfuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from dfuse.errors import ImageError, UsageError

__all__ = [
    "ADDRESS_LIMIT",
    "Buffer",
    "first_overlap",
    "merge",
    "merge_views",
    "overlap_error",
    "range_error",
]

Buffer = bytes | bytearray | memoryview
"""Data of a segment."""

ADDRESS_LIMIT = 1 << 32
"""The first address past the 32-bit address space (DfuSe addresses are 32 bits)."""

Label = Callable[[int], str]


def _segment_label(index: int) -> str:
    return f"segment {index}"


def overlap_error(
    what: str,
    first: tuple[int, int, str],
    second: tuple[int, int, str],
    *,
    offset: int | None = None,
) -> ImageError:
    """The one error for two overlapping pieces of data.

    ``first`` and ``second`` are ``(address, size, label)``, ``first`` starting at or
    before ``second``; ``what`` names the pieces in the plural ("elements of target 0",
    "Intel HEX records", "inputs"); ``offset`` locates the second one in a file.
    """
    (a, a_size, a_label), (b, b_size, b_label) = first, second
    return ImageError(
        f"{what} overlap",
        offset=offset,
        expected="each address written once",
        found=f"{a_label} at 0x{a:08X}-0x{a + a_size - 1:08X} and "
        f"{b_label} at 0x{b:08X}-0x{b + b_size - 1:08X}",
    )


def range_error(what: str, address: int, size: int, label: str) -> ImageError:
    """The one error for data that does not fit the 32-bit address space."""
    return ImageError(
        f"{what} go beyond 32-bit addresses",
        expected=f"0 <= address and address + size <= 0x{ADDRESS_LIMIT:X}",
        found=f"{label} at 0x{address:X} with {size} bytes, up to 0x{address + size:X}",
    )


def first_overlap(spans: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """Indices ``(before, after)`` of the first overlapping pair of ``(address, size)``
    spans, in address order (empty spans never overlap); ``None`` when none do."""
    order = sorted((i for i, (_, size) in enumerate(spans) if size), key=lambda i: spans[i][0])
    end = -1
    previous = -1
    for index in order:
        address, size = spans[index]
        if address < end:
            return previous, index
        end = address + size
        previous = index
    return None


def _runs(
    segments: Iterable[tuple[int, Buffer]], what: str, label: Label
) -> Iterator[tuple[int, list[Buffer]]]:
    """The runs of adjacent data, in address order, each checked (a generator)."""
    items: list[tuple[int, Buffer]] = []
    unsorted = False
    last = -1
    for index, (address, data) in enumerate(segments):
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if address < 0:
            raise UsageError(
                f"negative address {address} for {label(index)}",
                value=address,
                expected="an address from 0 to 0xFFFFFFFF",
            )
        if address + size > ADDRESS_LIMIT:
            raise range_error(what, address, size, label(index))
        if address < last:
            unsorted = True
        last = address
        items.append((address, data))
    order: Iterable[int] = range(len(items))
    if unsorted:  # a stable sort: equal addresses keep their order (and their labels)
        order = sorted(order, key=lambda i: items[i][0])
    start = end = previous = -1
    pieces: list[Buffer] = []  # the run being joined (one live list, not one per run)
    for index in order:
        address, data = items[index]
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if not size:
            continue
        if address < end:
            before, before_data = items[previous]
            before_size = (
                len(before_data) if not isinstance(before_data, memoryview) else before_data.nbytes
            )
            raise overlap_error(
                what, (before, before_size, label(previous)), (address, size, label(index))
            )
        if address == end:
            pieces.append(data)
        else:
            if pieces:
                yield start, pieces
            start, pieces = address, [data]
        end = address + size
        previous = index
    if pieces:
        yield start, pieces


def merge(
    segments: Iterable[tuple[int, Buffer]],
    *,
    what: str = "segments",
    label: Label = _segment_label,
) -> list[tuple[int, bytes]]:
    """Sort ``(address, data)`` pairs, drop empty ones and join adjacent ones into runs.

    Linear when the segments come in address order, ``O(n log n)`` otherwise. ``label(i)``
    names the ``i``-th segment in errors ("line 12", "element 3", "app.hex").

    Raises:
        ImageError: two segments overlap (even with the same bytes), or one does not fit
            the 32-bit address space (:func:`overlap_error`, :func:`range_error`).
        UsageError: an address is negative (a caller's bug; also a ``ValueError``).
    """
    out: list[tuple[int, bytes]] = []
    for address, pieces in _runs(segments, what, label):
        first = pieces[0]
        out.append(
            (address, first if len(pieces) == 1 and isinstance(first, bytes) else b"".join(pieces))
        )
    return out


def merge_views(
    segments: Iterable[tuple[int, Buffer]],
    *,
    what: str = "segments",
    label: Label = _segment_label,
) -> list[tuple[int, memoryview]]:
    """:func:`merge`, returning byte memoryviews (a lone segment is not copied)."""
    out: list[tuple[int, memoryview]] = []
    for address, pieces in _runs(segments, what, label):
        if len(pieces) == 1:
            view = memoryview(pieces[0])
            out.append((address, view if view.format == "B" and view.ndim == 1 else view.cast("B")))
        else:
            out.append((address, memoryview(b"".join(pieces))))
    return out
