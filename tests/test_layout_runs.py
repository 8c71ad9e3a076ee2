"""Layouts keep ``count*size`` groups as runs and make sectors on demand (issue 13.7): any
real layout parses (64 MiB of external flash behind mboot: 16384 sectors), memory stays
small for any string, and every query agrees with the plain expanded list."""

from __future__ import annotations

import tracemalloc

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dfuse.layout import Access, MemoryLayout, Sector, SectorList


def test_mboot_external_flash_parses() -> None:
    text = "@Internal Flash  /0x70000000/16384*4Kg"
    layout = MemoryLayout.parse(text)
    assert len(layout.sectors) == 16384
    assert layout.size == 64 << 20
    assert layout.sectors[-1] == Sector.with_access(0x73FFF000, 4096, "g")
    assert layout.sectors[-1].index == 16383
    assert layout.sector_at(0x70001234) == Sector.with_access(0x70001000, 4096, "g")
    assert str(layout) == text
    assert isinstance(layout.sectors, SectorList)


def test_memory_stays_small_for_any_number_of_sectors() -> None:
    tracemalloc.start()
    try:
        layout = MemoryLayout.parse("@All/0x00000000/4294967295*1 g")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000
    assert len(layout.sectors) == 4294967295
    last = layout.sector_at(0xFFFFFFFE)
    assert last is not None
    assert last.index == 0xFFFFFFFE
    assert layout.allows(0, 0xFFFFFFFF, Access.READ | Access.WRITE)
    assert not layout.allows(0, 0x100000000)
    assert [s.address for s in layout.sectors_for(0x1000, 3)] == [0x1000, 0x1001, 0x1002]
    assert layout.sectors[10**9].address == 10**9


groups = st.lists(
    st.tuples(
        st.integers(1, 40),
        st.sampled_from([1, 4, 128, 1024, 2048, 16384]),
        st.sampled_from("abcdefg"),
    ),
    min_size=1,
    max_size=6,
)


def _text(
    address: int,
    gs: list[tuple[int, int, str]],
    extra: tuple[int, list[tuple[int, int, str]]] | None,
) -> str:
    def region(at: int, g: list[tuple[int, int, str]]) -> str:
        return f"/0x{at:08X}/" + ",".join(f"{c:02d}*{s:03d} {letter}" for c, s, letter in g)

    text = "@R" + region(address, gs)
    if extra is not None:
        text += region(*extra)
    return text


@settings(max_examples=80, deadline=None)
@example(gs=[(1, 1, "a")], second=[(2, 16384, "a")], probes=[25000])  # an empty span
@given(
    gs=groups,
    second=st.none() | groups,
    probes=st.lists(st.integers(0, 1 << 22), max_size=12),
)
def test_queries_agree_with_the_expanded_list(
    gs: list[tuple[int, int, str]], second: list[tuple[int, int, str]] | None, probes: list[int]
) -> None:
    base = 0x08000000
    end = base + sum(c * s for c, s, _ in gs)
    extra = (end + 0x1000, second) if second is not None else None
    layout = MemoryLayout.parse(_text(base, gs, extra))
    expanded: list[Sector] = []
    for start, g in ((base, gs), *(((extra[0], extra[1]),) if extra is not None else ())):
        at = start
        for count, size, letter in g:
            for _ in range(count):
                expanded.append(Sector.with_access(at, size, letter))
                at += size
    sectors = layout.sectors
    assert list(sectors) == expanded
    assert sectors == tuple(expanded)
    assert len(sectors) == len(expanded)
    assert [s.index for s in sectors] == list(range(len(expanded)))
    assert [sectors[i] for i in range(-len(expanded), 0)] == expanded
    assert sectors[1:4] == tuple(expanded[1:4])
    for probe in probes:
        address = base + probe
        linear = next((s for s in expanded if s.address <= address < s.end), None)
        assert layout.sector_at(address) == linear
        length = probe % 5000
        # an empty span touches no sector (the documented rule), even inside one
        want = tuple(
            s for s in expanded if length and s.address < address + length and address < s.end
        )
        assert layout.sectors_for(address, length) == want
        for access in (Access(0), Access.READ, Access.WRITE | Access.ERASE):
            covered = address
            ok = True
            for s in want:
                if s.address > covered or (s.access & access) != access:
                    ok = False
                    break
                covered = s.end
            assert layout.allows(address, length, access) == (ok and covered >= address + length)
    assert MemoryLayout.parse(str(layout)) == layout
