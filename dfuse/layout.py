"""Memory layouts: a DfuSe alternate-setting string as a typed sector map.

A DfuSe device names each alternate setting with a string that is also its memory map
(ST UM0424 §4.3.2, AN3156)::

    @Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg
    ^name             ^region address ^count*size, multiplier, access letter

:meth:`MemoryLayout.parse` reads such a string the way dfu-util's ``src/dfuse_mem.c`` does
(several regions ``/0x…/…/0x…/…``, several sector groups per region separated by ``,``,
decimal counts and sizes with leading zeros, multipliers ``' '``/``B`` (bytes), ``K``, ``M``,
access letters ``a``–``g``, whitespace before a number, and the sloppy form with no multiplier
where the access letter follows the size directly, ``1536*128g``), but it refuses what
dfu-util silently misreads or drops (unknown multipliers or access letters, trailing garbage,
zero-sized or overlapping memory, addresses past 2**32): any malformed string raises
:class:`~dfuse.errors.LayoutError` with the position, never a partial layout.

``str(layout)`` gives a string that parses back to an equal layout; for a parsed layout it is
exactly the original string.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, overload

from dfuse.errors import LayoutError

__all__ = [
    "STM32F411XC_ALT_STRINGS",
    "STM32F411XC_FLASH",
    "STM32F411XE_ALT_STRINGS",
    "STM32F411XE_DEVICE_FEATURE",
    "STM32F411XE_FLASH",
    "STM32F411XE_OPTION_BYTES",
    "STM32F411XE_OTP",
    "Access",
    "MemoryLayout",
    "Region",
    "Sector",
    "SectorList",
]

#: One past the highest address of the 32-bit address space.
ADDRESS_LIMIT = 1 << 32

_MULTIPLIERS = {" ": 1, "B": 1, "K": 1 << 10, "M": 1 << 20}
_ACCESS_LETTERS = "abcdefg"
_WHITESPACE = " \t\n\v\f\r"  # what C's isspace() skips before %d / %x
_DIGITS = "0123456789"
#: The most digits a count or size may have, leading zeros included (real ROMs pad to 4).
_MAX_DIGITS = 32
_HEX_DIGITS = "0123456789abcdefABCDEF"


class Access(enum.IntFlag):
    """Rights on a sector, as the low three bits of the DfuSe access letter.

    ``a`` = READ, ``b`` = ERASE, ``c`` = READ|ERASE, ``d`` = WRITE, ``e`` = READ|WRITE,
    ``f`` = ERASE|WRITE, ``g`` = all three (``letter = chr(ord('a') - 1 + value)``).
    """

    READ = 1
    ERASE = 2
    WRITE = 4

    @classmethod
    def from_letter(cls, letter: str) -> Access:
        """The rights an access letter ``'a'``–``'g'`` stands for (ValueError otherwise)."""
        if len(letter) != 1 or letter not in _ACCESS_LETTERS:
            raise ValueError(f"access letter must be one of 'a'..'g', got {letter!r}")
        return cls(ord(letter) - ord("a") + 1)

    @property
    def letter(self) -> str:
        """The DfuSe access letter (ValueError for no rights at all, which has none)."""
        if not 1 <= self.value <= 7:
            raise ValueError("a sector without any rights has no access letter")
        return chr(ord("a") - 1 + self.value)


_NO_RIGHTS = Access(0)


@dataclass(frozen=True, slots=True)
class Sector:
    """One erasable unit of memory: ``size`` bytes at ``address`` and the rights on them.

    ``index`` is the sector's position in its layout's :attr:`MemoryLayout.sectors` (0 for the
    first, lowest sector); it is set by :class:`MemoryLayout` and does not take part in
    equality. For the STM32F4 internal flash it is the hardware sector number.
    """

    address: int
    size: int
    readable: bool
    erasable: bool
    writable: bool
    index: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"sector size must be positive, got {self.size}")
        if self.address < 0 or self.address + self.size > ADDRESS_LIMIT:
            raise ValueError(
                f"sector 0x{self.address:X}+{self.size} does not fit the 32-bit address space"
            )
        if not (self.readable or self.erasable or self.writable):
            raise ValueError("a sector must be readable, erasable or writable")

    @property
    def end(self) -> int:
        """One past the last address of the sector (``address + size``)."""
        return self.address + self.size

    @property
    def access(self) -> Access:
        """The sector's rights as :class:`Access` flags."""
        flags = Access(0)
        if self.readable:
            flags |= Access.READ
        if self.erasable:
            flags |= Access.ERASE
        if self.writable:
            flags |= Access.WRITE
        return flags

    @property
    def letter(self) -> str:
        """The DfuSe access letter of the sector's rights (``'g'`` for all three)."""
        return self.access.letter

    def __contains__(self, address: object) -> bool:
        return isinstance(address, int) and self.address <= address < self.end

    def to_dict(self) -> dict[str, int | str]:
        """A JSON-able record: ``{"index", "address", "size", "access"}`` (the access letter).

        >>> Sector(0x08000000, 0x4000, True, True, True).to_dict()["access"]
        'g'
        """
        return {
            "index": self.index,
            "address": self.address,
            "size": self.size,
            "access": self.letter,
        }

    @classmethod
    def with_access(cls, address: int, size: int, access: Access | str) -> Sector:
        """A sector from an address, a size and rights (flags or an access letter)."""
        flags = Access.from_letter(access) if isinstance(access, str) else Access(access)
        return cls(
            address,
            size,
            readable=Access.READ in flags,
            erasable=Access.ERASE in flags,
            writable=Access.WRITE in flags,
        )


@dataclass(frozen=True, slots=True)
class _Group:
    """One ``count*size`` group of a region's spelling (internal)."""

    count: int
    size: int
    access: Access


def _runs(sectors: Sequence[Sector]) -> list[_Group]:
    """Run-length encode sectors into groups of equal size and rights."""
    if isinstance(sectors, SectorList):
        return _merge([_Group(r.n, r.size, r.access) for r in sectors.runs])
    runs: list[_Group] = []
    for s in sectors:
        if runs and runs[-1].size == s.size and runs[-1].access == s.access:
            last = runs[-1]
            runs[-1] = _Group(last.count + 1, last.size, last.access)
        else:
            runs.append(_Group(1, s.size, s.access))
    return runs


def _merge(groups: list[_Group]) -> list[_Group]:
    merged: list[_Group] = []
    for g in groups:
        if merged and merged[-1].size == g.size and merged[-1].access == g.access:
            merged[-1] = _Group(merged[-1].count + g.count, g.size, g.access)
        else:
            merged.append(g)
    return merged


def _format_group(group: _Group) -> str:
    size = group.size
    if size % (1 << 20) == 0:
        value, mult = size >> 20, "M"
    elif size % (1 << 10) == 0:
        value, mult = size >> 10, "K"
    else:
        value, mult = size, " "
    return f"{group.count:02d}*{value:03d}{mult}{group.access.letter}"


class _Run(NamedTuple):
    """``count`` sectors of ``size`` bytes from ``address``; the first has index ``first``."""

    address: int
    n: int
    size: int
    access: Access
    first: int

    @property
    def end(self) -> int:
        return self.address + self.n * self.size


class SectorList(Sequence[Sector]):
    """The sectors of a layout or region, kept as ``count*size`` runs and made into
    :class:`Sector` objects only when asked for: a string may describe millions of sectors
    (``16384*4Kg`` for 64 MiB of external flash, ``4294967295*1 g`` for the whole address
    space) in a few bytes of memory. Indexing, ``len``, iteration, slicing and
    :meth:`index_at` (bisect over the runs) work as on a tuple; it compares equal to a
    sequence of the same sectors.
    """

    __slots__ = ("_cache", "_firsts", "_len", "_starts", "runs")

    #: Up to this many sectors the objects are made once, on first use, and kept (every real
    #: internal flash): indexing is then as fast as a tuple's.
    CACHE_LIMIT = 4096

    def __init__(self, runs: Sequence[_Run]) -> None:
        self.runs: tuple[_Run, ...] = tuple(runs)
        self._starts = [r.address for r in self.runs]
        self._firsts = [r.first for r in self.runs]
        last = self.runs[-1] if self.runs else None
        self._len = last.first + last.n if last is not None else 0
        self._cache: tuple[Sector, ...] | None = None

    def _cached(self) -> tuple[Sector, ...] | None:
        if self._cache is None and self._len <= self.CACHE_LIMIT:
            self._cache = tuple(self._expand())
        return self._cache

    def __len__(self) -> int:
        return self._len

    def _sector(self, run: _Run, offset: int) -> Sector:
        a = run.access
        return Sector(
            run.address + offset * run.size,
            run.size,
            Access.READ in a,
            Access.ERASE in a,
            Access.WRITE in a,
            run.first + offset,
        )

    @overload
    def __getitem__(self, index: int) -> Sector: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Sector, ...]: ...

    def __getitem__(self, index: int | slice) -> Sector | tuple[Sector, ...]:
        cache = self._cached()
        if cache is not None:
            return cache[index]
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._len)))
        i = index + self._len if index < 0 else index
        if not 0 <= i < self._len:
            raise IndexError("sector index out of range")
        r = bisect.bisect_right(self._firsts, i) - 1
        run = self.runs[r]
        return self._sector(run, i - run.first)

    def __iter__(self) -> Iterator[Sector]:
        cache = self._cached()
        return iter(cache) if cache is not None else self._expand()

    def _expand(self) -> Iterator[Sector]:
        for run in self.runs:
            for offset in range(run.n):
                yield self._sector(run, offset)

    def index_at(self, address: int) -> int | None:
        """The index of the sector holding ``address``, or ``None``."""
        r = bisect.bisect_right(self._starts, address) - 1
        if r < 0:
            return None
        run = self.runs[r]
        offset = (address - run.address) // run.size
        return run.first + offset if offset < run.n else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SectorList):
            return _runs(self) == _runs(other) and self._starts[:1] == other._starts[:1]
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == self._len and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple((r.address, r.n, r.size, r.access) for r in self.runs))

    def __repr__(self) -> str:
        body = ", ".join(f"0x{r.address:08X}+{r.n}*{r.size}{r.access.letter}" for r in self.runs)
        return f"SectorList([{body}])"


def _runs_of(address: int, sectors: Sequence[Sector]) -> list[tuple[int, int, int, Access]]:
    """``(address, count, size, access)`` runs of a region's sectors."""
    if isinstance(sectors, SectorList):
        return [(r.address, r.n, r.size, r.access) for r in sectors.runs]
    out: list[tuple[int, int, int, Access]] = []
    for sec in sectors:
        if out and out[-1][2] == sec.size and out[-1][3] == sec.access:
            a, c, z, acc = out[-1]
            out[-1] = (a, c + 1, z, acc)
        else:
            out.append((sec.address, 1, sec.size, sec.access))
    return out


@dataclass(frozen=True)
class Region:
    """A contiguous run of sectors starting at ``address`` (one ``/0x…/…`` part of a string).

    ``spelling`` is the region's text as it was parsed (``"/0x08000000/04*016Kg,…"``); it
    only serves ``str()`` to reproduce the original string exactly and takes no part in
    equality. Regions built by hand leave it ``None`` and get the canonical ST spelling.
    ``sectors`` may be any sequence of contiguous sectors (kept as a tuple); in a
    :class:`MemoryLayout` it is a lazy :class:`SectorList` of runs.
    """

    address: int
    sectors: Sequence[Sector]
    spelling: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.sectors:
            raise ValueError("a region needs at least one sector")
        if isinstance(self.sectors, SectorList):
            if self.sectors.runs[0].address != self.address:
                raise ValueError(f"sectors of a region must start at 0x{self.address:08X}")
            return  # runs are contiguous by construction
        object.__setattr__(self, "sectors", tuple(self.sectors))
        expected = self.address
        for s in self.sectors:
            if s.address != expected:
                raise ValueError(
                    f"sectors of a region must be contiguous from 0x{self.address:08X}: "
                    f"expected a sector at 0x{expected:08X}, found one at 0x{s.address:08X}"
                )
            expected = s.end

    @property
    def end(self) -> int:
        """One past the region's last address."""
        return self.sectors[-1].end

    @property
    def size(self) -> int:
        """Bytes in the region."""
        return self.end - self.address

    def __str__(self) -> str:
        if self.spelling is not None:
            try:
                address, groups = _parse_region_spelling(self.spelling)
            except LayoutError:
                pass
            else:
                if address == self.address and _merge(groups) == _runs(self.sectors):
                    return self.spelling
        body = ",".join(_format_group(g) for g in _runs(self.sectors))
        return f"/0x{self.address:08X}/{body}"


@dataclass(frozen=True)
class MemoryLayout:
    """A device memory as a DfuSe alternate setting describes it.

    Attributes:
        name: the name as sent, between ``@`` and the first ``/``, spaces kept
            (``"Internal Flash  "``); :attr:`label` is the stripped form.
        regions: the regions in string order.

    Example::

        >>> flash = MemoryLayout.parse("@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg")
        >>> flash.label, len(flash.sectors), hex(flash.size)
        ('Internal Flash', 8, '0x80000')
        >>> [hex(s.address) for s in flash.sectors_for(0x08003000, 0x2000)]
        ['0x8000000', '0x8004000']
    """

    name: str
    regions: tuple[Region, ...]
    _sectors: SectorList = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"a layout name must be non-empty and without '/', got {self.name!r}")
        if not self.regions:
            raise ValueError("a layout needs at least one region")
        ordered = sorted(self.regions, key=lambda r: r.address)
        for before, after in itertools.pairwise(ordered):
            if before.end > after.address:
                raise ValueError(
                    f"regions overlap: 0x{before.address:08X}-0x{before.end - 1:08X} and "
                    f"0x{after.address:08X}-0x{after.end - 1:08X}"
                )
        # Number the sectors in address order (index is not part of equality): runs with
        # the index of their first sector, expanded only on demand.
        index = 0
        numbered: dict[int, Region] = {}
        every: list[_Run] = []
        for region in ordered:
            runs = []
            for address, count, size, access in _runs_of(region.address, region.sectors):
                runs.append(_Run(address, count, size, access, index))
                index += count
            every.extend(runs)
            numbered[id(region)] = Region(region.address, SectorList(runs), region.spelling)
        regions = tuple(numbered[id(r)] for r in self.regions)
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "_sectors", SectorList(every))

    # ------------------------------------------------------------------ queries

    @property
    def label(self) -> str:
        """The name without surrounding whitespace (``"Internal Flash"``)."""
        return self.name.strip()

    @property
    def sectors(self) -> SectorList:
        """Every sector of every region, in address order (a lazy sequence,
        :class:`SectorList`)."""
        return self._sectors

    @property
    def size(self) -> int:
        """Total bytes of all sectors."""
        return sum(r.size for r in self.regions)

    @property
    def address(self) -> int:
        """The lowest address of the layout."""
        return self._sectors[0].address

    @property
    def end(self) -> int:
        """One past the highest address of the layout."""
        return self._sectors[-1].end

    def to_dict(self) -> dict[str, object]:
        """A JSON-able record: label, address, size, the layout string and every sector.

        >>> layout = MemoryLayout.parse("@Internal Flash  /0x08000000/04*016Kg")
        >>> d = layout.to_dict()
        >>> d["name"], d["size"], len(d["sectors"])
        ('Internal Flash', 65536, 4)
        """
        return {
            "name": self.label,
            "address": self.address,
            "size": self.size,
            "layout": str(self),
            "sectors": [s.to_dict() for s in self.sectors],
        }

    def __iter__(self) -> Iterator[Sector]:
        return iter(self._sectors)

    def __len__(self) -> int:
        return len(self._sectors)

    def sector_at(self, address: int) -> Sector | None:
        """The sector holding ``address``, or ``None`` if no sector does."""
        i = self._sectors.index_at(address)
        return None if i is None else self._sectors[i]

    def sectors_for(self, address: int, length: int) -> tuple[Sector, ...]:
        """The sectors overlapping ``[address, address + length)``, each once, in address
        order: what a write of that span must erase. Bytes of the span in no sector are
        ignored (use :meth:`contains` to check them)."""
        if length < 0:
            raise ValueError(f"length must not be negative, got {length}")
        if length == 0:
            return ()
        sectors = self._sectors
        i = sectors.index_at(address)
        if i is None:  # in a gap or before the first sector: the next sector on
            r = bisect.bisect_right([run.address for run in sectors.runs], address)
            if r >= len(sectors.runs):
                return ()
            i = sectors.runs[r].first
        stop = address + length
        out = []
        while i < len(sectors):
            s = sectors[i]
            if s.address >= stop:
                break
            out.append(s)
            i += 1
        return tuple(out)

    def allows(self, address: int, length: int, access: Access = _NO_RIGHTS) -> bool:
        """Whether every byte of ``[address, address + length)`` lies in some sector that has
        at least the rights ``access`` (True for an empty span)."""
        if length < 0:
            raise ValueError(f"length must not be negative, got {length}")
        expected, stop = address, address + length
        for run in self._sectors.runs:  # run by run: fast for any number of sectors
            if run.end <= expected:
                continue
            if expected >= stop:
                break
            if run.address > expected or (run.access & access) != access:
                return False
            expected = run.end
        return expected >= stop

    def contains(self, address: int, length: int = 1) -> bool:
        """Whether every byte of ``[address, address + length)`` lies in some sector."""
        return self.allows(address, length)

    # ------------------------------------------------------------------ text

    def __str__(self) -> str:
        return "@" + self.name + "".join(str(r) for r in self.regions)

    @classmethod
    def parse(cls, text: str) -> MemoryLayout:
        """Read a DfuSe alternate-setting string; :class:`~dfuse.errors.LayoutError` if it is
        malformed (with the position, what was expected there and what was found)."""
        if not isinstance(text, str):
            raise TypeError(f"a layout string must be str, got {type(text).__name__}")
        return _Parser(text).layout()


# --------------------------------------------------------------------------- parser


class _Parser:
    """A cursor over a layout string; every failure is a LayoutError naming the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, expected: str, position: int | None = None) -> LayoutError:
        pos = self.pos if position is None else position
        found = repr(self.text[pos]) if pos < len(self.text) else "end of string"
        return LayoutError(message, text=self.text, position=pos, expected=expected, found=found)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.peek() and self.peek() in _WHITESPACE:
            self.pos += 1

    def expect(self, literal: str, message: str) -> None:
        if not self.text.startswith(literal, self.pos):
            # point at the first character that differs
            pos = self.pos
            for ch in literal:
                if pos < len(self.text) and self.text[pos] == ch:
                    pos += 1
                else:
                    break
            raise self.fail(message, repr(literal), pos)
        self.pos += len(literal)

    def decimal(self, what: str) -> tuple[int, int]:
        """Whitespace, then decimal digits; returns (value, position of the first digit)."""
        self.skip_space()
        start = self.pos
        while self.peek() and self.peek() in _DIGITS:
            self.pos += 1
        digits = self.text[start : self.pos]
        if not digits:
            raise self.fail(f"missing {what}", f"a decimal {what}")
        if len(digits) > _MAX_DIGITS:  # issue 17 L1: 4300 zeros made int() raise ValueError
            raise self.fail(f"{what} too long", f"at most {_MAX_DIGITS} digits", start)
        significant = digits.lstrip("0")
        if len(significant) > 10:  # also keeps int() away from huge strings
            raise self.fail(f"{what} too large", f"a {what} below 2**32", start)
        value = int(significant or "0")
        if value == 0:
            raise self.fail(f"zero {what}", f"a {what} of at least 1", start)
        return value, start

    def address(self) -> int:
        self.skip_space()
        start = self.pos
        while self.peek() and self.peek() in _HEX_DIGITS:
            self.pos += 1
        digits = self.text[start : self.pos]
        if not digits:
            raise self.fail("missing region address", "hexadecimal digits")
        if len(digits.lstrip("0")) > 8:
            raise self.fail(
                "region address past 2**32", "a 32-bit address (at most 8 hex digits)", start
            )
        return int(digits, 16)

    def region(self) -> tuple[int, list[_Group], list[int]]:
        """``/0x<hex>/group[,group…]`` at the cursor; returns the address, the groups and
        the position of each group."""
        self.expect("/0x", "missing region address")
        address = self.address()
        self.expect("/", "malformed region address")
        groups: list[_Group] = []
        positions: list[int] = []
        end = address
        while True:
            count, count_pos = self.decimal("sector count")
            self.expect("*", "malformed sector group")
            size, _ = self.decimal("sector size")
            mult_pos = self.pos
            ch = self.peek()
            if ch in _MULTIPLIERS and ch:
                size *= _MULTIPLIERS[ch]
                self.pos += 1
                letter = self.peek()
                if not letter or letter not in _ACCESS_LETTERS:
                    raise self.fail("unknown access letter", "an access letter 'a'..'g'")
                self.pos += 1
            elif ch and ch in _ACCESS_LETTERS:
                letter = ch  # dfu-util's sloppy form: no multiplier, bytes
                self.pos += 1
            else:
                raise self.fail(
                    "unknown multiplier",
                    "a multiplier ' ', 'B', 'K', 'M' or an access letter 'a'..'g'",
                    mult_pos,
                )
            end += count * size
            if end > ADDRESS_LIMIT:
                raise self.fail(
                    "memory extends past 2**32",
                    f"sectors ending at or below 0x{ADDRESS_LIMIT:X}",
                    count_pos,
                )
            groups.append(_Group(count, size, Access.from_letter(letter)))
            positions.append(count_pos)
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() in ("/", ""):
                return address, groups, positions
            raise self.fail("unexpected text after access letter", "',', '/' or end of string")

    def layout(self) -> MemoryLayout:
        text = self.text
        if not text.startswith("@"):
            raise self.fail("missing '@' before the name", "'@'")
        slash = text.find("/")
        name_end = len(text) if slash < 0 else slash
        if name_end == 1:
            raise self.fail("missing name", "a name after '@'", 1)
        name = text[1:name_end]
        self.pos = name_end
        parsed: list[tuple[int, list[_Group], int, int]] = []  # address, groups, start, end
        while True:
            start = self.pos
            address, groups, _ = self.region()
            parsed.append((address, groups, start, self.pos))
            if self.pos >= len(text):
                break
        # overlapping regions
        spans = sorted(
            (address, address + sum(g.count * g.size for g in groups), start)
            for address, groups, start, _ in parsed
        )
        for (a0, e0, s0), (a1, e1, s1) in itertools.pairwise(spans):
            if e0 > a1:  # report the region that comes later in the string
                other = (a0, e0) if s1 > s0 else (a1, e1)
                raise self.fail(
                    "regions overlap",
                    f"an address outside 0x{other[0]:08X}-0x{other[1] - 1:08X}"
                    " (taken by another region)",
                    max(s0, s1) + 3,
                )
        regions = []
        for address, groups, start, end in parsed:
            runs, at = [], address
            for g in groups:
                runs.append(_Run(at, g.count, g.size, g.access, 0))
                at += g.count * g.size
            regions.append(Region(address, SectorList(runs), text[start:end]))
        return MemoryLayout(name, tuple(regions))


def _parse_region_spelling(spelling: str) -> tuple[int, list[_Group]]:
    """Parse one ``/0x…/…`` region on its own (LayoutError if it is not exactly one)."""
    p = _Parser(spelling)
    address, groups, _ = p.region()
    if p.pos != len(spelling):
        raise p.fail("more than one region", "end of string")
    return address, groups


# --------------------------------------------------------------------------- known layouts

#: The STM32F411xE system bootloader's alternate-setting strings, in alt order
#: (flash, option bytes, OTP, device feature). The part database (:mod:`dfuse.parts`, row
#: ``stm32f411xe``, with its evidence) is the source; these stay for compatibility, and
#: tests/parts keeps them equal to the row.
STM32F411XE_ALT_STRINGS: tuple[str, ...] = (
    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
    "@Option Bytes  /0x1FFFC000/01*016 e",
    "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
    "@Device Feature/0xFFFF0000/01*004 e",
)
#: The STM32F411xC (256 KiB flash) bootloader's strings: like the xE, with sectors 0-5 only.
STM32F411XC_ALT_STRINGS: tuple[str, ...] = (
    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,01*128Kg",
    *STM32F411XE_ALT_STRINGS[1:],
)

#: STM32F411xE internal flash, 512 KiB: sectors 0-3 16 KiB, 4 64 KiB, 5-7 128 KiB.
STM32F411XE_FLASH = MemoryLayout.parse(STM32F411XE_ALT_STRINGS[0])
#: STM32F411 option bytes: one 16-byte block at 0x1FFFC000, read+write.
STM32F411XE_OPTION_BYTES = MemoryLayout.parse(STM32F411XE_ALT_STRINGS[1])
#: STM32F411 OTP: 512 bytes of data at 0x1FFF7800 and 16 lock bytes at 0x1FFF7A00.
STM32F411XE_OTP = MemoryLayout.parse(STM32F411XE_ALT_STRINGS[2])
#: STM32F411 "Device Feature" alt: 4 bytes at 0xFFFF0000, read+write.
STM32F411XE_DEVICE_FEATURE = MemoryLayout.parse(STM32F411XE_ALT_STRINGS[3])
#: STM32F411xC internal flash, 256 KiB: sectors 0-3 16 KiB, 4 64 KiB, 5 128 KiB.
STM32F411XC_FLASH = MemoryLayout.parse(STM32F411XC_ALT_STRINGS[0])
