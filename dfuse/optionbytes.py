"""STM32F4 (F411) option bytes and OTP area as typed data. Pure, no I/O.

The option bytes are read and written over DfuSe (alternate setting 1) as one 16-byte block at
0x1FFFC000 (RM0383 §3.6, RM0090 §3.7 for the F40x/F42x siblings). Two 64-bit entries::

    offset  0  USER      nRST_STDBY (bit 7), nRST_STOP (6), WDG_SW (5), BOR_LEV (3:2);
                         bit 4 and bits 1:0 "not used" (read as 1)
    offset  1  RDP       0xAA level 0, 0xCC level 2, anything else level 1
    offset  2  ~USER     complement of offset 0  (RM: "reserved"; see below)
    offset  3  ~RDP      complement of offset 1
    offset  4..7         reserved
    offset  8  nWRP[7:0] sector i write-protected when bit i is 0 (SPRMOD = 0)
    offset  9  bit 7 SPRMOD (1: the nWRP bits select PCROP, active high); other bits not
               used on the 8-sector F401/F411; bits 3:0 are nWRP[11:8] on the 12-sector
               F405/F407/F412 and on bank 1 of the F42x/F43x (RM0090 §3.6.4: "nWRPi bit
               (0 ≤ i ≤ 11)", FLASH_OPTCR bits 27:16)
    offset 10  ~nWRP[7:0]  complement of offset 8
    offset 11  ~offset 9
    offset 12..15        reserved

The reference manuals mark bits [63:16] of each entry "reserved"; read-outs of real F2/F4 parts
hold the bitwise complement of the low half-word there (as on the F0/F1/F3, where the manuals
document it). The F4 hardware is not documented to check them, so :meth:`OptionBytes.parse`
accepts any complement by default (``strict=True`` checks them) and :meth:`OptionBytes.to_bytes`
always writes correct complements. The other reserved bytes are kept as read.

How many nWRP bits the half-word at offset 8 has depends on the part: :attr:`OptionBytes.sectors`
is 8 (the default, RM0383) or 12 (RM0090); :func:`nwrp_sectors` gives it from the number of
flash sectors. The F42x/F43x keep the nWRP bits of sectors 12-23 in a second block at
0x1FFEC000, which this class does not model.

The OTP area (alternate setting 2) is 16 blocks of 32 bytes at 0x1FFF7800 followed by 16 lock
bytes at 0x1FFF7A00; lock byte ``i`` = 0x00 locks block ``i`` for good. :class:`OtpArea` models
the 528 bytes.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from dfuse.errors import OptionBytesError, UsageError

__all__ = [
    "FACTORY_DEFAULT",
    "FACTORY_OPTCR",
    "OPTION_BYTES_ADDRESS",
    "OPTION_BYTES_SIZE",
    "OTP_ADDRESS",
    "OTP_BLOCKS",
    "OTP_BLOCK_SIZE",
    "OTP_LOCK_ADDRESS",
    "OTP_SIZE",
    "RDP_LEVEL_0",
    "RDP_LEVEL_1",
    "RDP_LEVEL_2",
    "WRP_SECTORS",
    "WRP_SECTORS_RM0090",
    "BorLevel",
    "OptionBytes",
    "OtpArea",
    "RdpLevel",
    "nwrp_sectors",
]

#: Where the option-byte block lives (DfuSe alt 1 of the F4 system bootloader).
OPTION_BYTES_ADDRESS = 0x1FFF_C000
#: Size of the block as read and written over DfuSe.
OPTION_BYTES_SIZE = 16
#: FLASH_OPTCR as the F411 leaves the factory (RM0383: reset value 0x0FFFAAED).
FACTORY_OPTCR = 0x0FFF_AAED
#: Number of sectors with an nWRP bit (F411xE sectors 0-7; the xC has 0-5, bits 6-7 unused).
WRP_SECTORS = 8
#: nWRP bits in the same half-word on the 12-sector RM0090 parts (F405/F407/F415/F417, and
#: sectors 0-11 of the F42x/F43x), and on the F412 (RM0402).
WRP_SECTORS_RM0090 = 12

#: RDP byte for level 0 (no read protection).
RDP_LEVEL_0 = 0xAA
#: RDP byte dfuse writes for level 1 (any byte other than 0xAA and 0xCC means level 1;
#: 0x55 is what ST's HAL uses, ``OB_RDP_LEVEL_1``).
RDP_LEVEL_1 = 0x55
#: RDP byte for level 2 (permanent: debug, RAM boot and the bootloader are disabled for good).
RDP_LEVEL_2 = 0xCC

#: OTP data: 16 blocks of 32 bytes.
OTP_ADDRESS = 0x1FFF_7800
OTP_BLOCKS = 16
OTP_BLOCK_SIZE = 32
#: One lock byte per block, right after the data.
OTP_LOCK_ADDRESS = OTP_ADDRESS + OTP_BLOCKS * OTP_BLOCK_SIZE
#: Data and lock bytes together, as DfuSe alt 2 exposes them (512 + 16).
OTP_SIZE = OTP_BLOCKS * OTP_BLOCK_SIZE + OTP_BLOCKS

_USER_NRST_STDBY = 0x80
_USER_NRST_STOP = 0x40
_USER_WDG_SW = 0x20
_USER_BOR_SHIFT = 2
_USER_BOR_MASK = 0x0C
_USER_NOT_USED = 0x13  # bit 4 and bits 1:0, "not used", read as 1
_NWRP_SPRMOD = 0x8000
_NWRP_LOW_HALF = 0x7FFF  # the nWRP bits and the not-used bits up to SPRMOD


class RdpLevel(enum.IntEnum):
    """Read-protection level."""

    LEVEL_0 = 0
    LEVEL_1 = 1
    LEVEL_2 = 2

    @property
    def description(self) -> str:
        """What the level means, in a few words."""
        return {
            0: "no read protection",
            1: "flash read protection (reads over DFU/debug blocked; back to 0 mass-erases)",
            2: "chip protection (permanent: no debug, no bootloader, option bytes frozen)",
        }[self.value]


class BorLevel(enum.IntEnum):
    """Brown-out reset threshold, the USER byte's BOR_LEV field (bits 3:2) as stored."""

    LEVEL_3 = 0b00
    LEVEL_2 = 0b01
    LEVEL_1 = 0b10
    OFF = 0b11

    @property
    def description(self) -> str:
        """RM0383's wording for the level."""
        if self is BorLevel.OFF:
            return "BOR off, POR/PDR threshold"
        return f"BOR level {3 - self.value} (VBOR{3 - self.value})"


def _complement16(value: int) -> bytes:
    return ((~value) & 0xFFFF).to_bytes(2, "little")


def nwrp_sectors(flash_sectors: int) -> int:
    """How many nWRP bits the half-word at 0x1FFFC008 has on a part with ``flash_sectors``
    flash sectors: 12 where it has more than 8 (RM0090: the F405/F407's 12 sectors; bank 1
    of the F42x/F43x's 24, whose sectors 12-23 have their bits in the second block), else 8
    (RM0383: F401/F411, whose bits 8-14 are not used).

    >>> nwrp_sectors(8), nwrp_sectors(6), nwrp_sectors(12), nwrp_sectors(24)
    (8, 8, 12, 12)
    """
    return WRP_SECTORS_RM0090 if flash_sectors > WRP_SECTORS else WRP_SECTORS


def _check_sectors(sectors: Iterable[int], count: int) -> frozenset[int]:
    out = frozenset(sectors)
    for s in sorted(out, key=repr):
        if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < count:
            beyond = isinstance(s, int) and count <= s < WRP_SECTORS_RM0090
            hint = (
                " (this block is decoded with the 8 nWRP bits of the F401/F411; the "
                "12-sector F2/F405/F407/F42x have 12: OptionBytes.parse(data, sectors=12))"
                if beyond
                else ""
            )
            raise UsageError(
                f"sector numbers must be 0..{count - 1}, got {s!r}{hint}",
                value=s,
                expected=f"a sector number 0..{count - 1}",
            )
    return out


@dataclass(frozen=True)
class OptionBytes:
    """The STM32F4 (F411) option-byte block at 0x1FFFC000.

    Attributes:
        user: the USER byte as stored (flags, BOR level and the not-used bits).
        rdp: the raw RDP byte (0xAA level 0, 0xCC level 2, anything else level 1).
        nwrp: the 16-bit half-word at 0x1FFFC008: nWRP bits 0-7 (0-11 with ``sectors``
            12), SPRMOD bit 15.
        reserved: the 8 reserved bytes (offsets 4-7 and 12-15), kept as read.
        sectors: how many nWRP bits ``nwrp`` has: 8 (F401/F411, RM0383) or 12 (F405/F407/
            F412, F42x/F43x bank 1, RM0090); see :func:`nwrp_sectors`.

    Example::

        >>> ob = OptionBytes.parse(FACTORY_DEFAULT.to_bytes())
        >>> ob.rdp_level, sorted(ob.write_protected), ob.bor_level.name
        (<RdpLevel.LEVEL_0: 0>, [], 'OFF')
        >>> sorted(ob.with_write_protection({0, 1}).write_protected)
        [0, 1]
    """

    user: int
    rdp: int
    nwrp: int
    reserved: bytes = field(default=b"\xff" * 8)
    sectors: int = WRP_SECTORS

    def __post_init__(self) -> None:
        for name, value, limit in (("user", self.user, 0xFF), ("rdp", self.rdp, 0xFF)):
            if not isinstance(value, int) or not 0 <= value <= limit:
                raise ValueError(f"{name} must be a byte, got {value!r}")
        if not isinstance(self.nwrp, int) or not 0 <= self.nwrp <= 0xFFFF:
            raise ValueError(f"nwrp must be a 16-bit value, got {self.nwrp!r}")
        if not isinstance(self.reserved, bytes) or len(self.reserved) != 8:
            raise ValueError(f"reserved must be 8 bytes, got {self.reserved!r}")
        if self.sectors not in (WRP_SECTORS, WRP_SECTORS_RM0090):
            raise ValueError(
                f"sectors must be {WRP_SECTORS} or {WRP_SECTORS_RM0090}, got {self.sectors!r}"
            )

    @property
    def _mask(self) -> int:
        """The nWRP bits of ``nwrp``."""
        return (1 << self.sectors) - 1

    # ------------------------------------------------------------------ codec

    @classmethod
    def parse(
        cls,
        data: bytes | bytearray | memoryview,
        *,
        strict: bool = False,
        sectors: int = WRP_SECTORS,
    ) -> OptionBytes:
        """Decode the 16-byte block, its nWRP half-word with ``sectors`` bits (8, or 12 for
        a part with more than 8 flash sectors: :func:`nwrp_sectors`). With ``strict``, the
        complement half-words (offsets 2-3 and 10-11) must be the bitwise complements of
        offsets 0-1 and 8-9; :class:`~dfuse.errors.OptionBytesError` otherwise, and for a
        wrong size."""
        raw = bytes(data)
        if len(raw) != OPTION_BYTES_SIZE:
            raise OptionBytesError(
                "option-byte block has the wrong size",
                offset=min(len(raw), OPTION_BYTES_SIZE),
                expected=f"{OPTION_BYTES_SIZE} bytes",
                found=f"{len(raw)} bytes",
            )
        if strict:
            for at in (0, 8):
                value = int.from_bytes(raw[at : at + 2], "little")
                want = _complement16(value)
                if raw[at + 2 : at + 4] != want:
                    raise OptionBytesError(
                        f"complement of offsets {at}-{at + 1} does not match",
                        offset=at + 2,
                        expected=want,
                        found=raw[at + 2 : at + 4],
                    )
        return cls(
            user=raw[0],
            rdp=raw[1],
            nwrp=int.from_bytes(raw[8:10], "little"),
            reserved=raw[4:8] + raw[12:16],
            sectors=sectors,
        )

    def to_bytes(self) -> bytes:
        """The 16-byte block, with the complement half-words computed."""
        low = bytes((self.user, self.rdp))
        wrp = self.nwrp.to_bytes(2, "little")
        return (
            low
            + _complement16(int.from_bytes(low, "little"))
            + self.reserved[:4]
            + wrp
            + _complement16(self.nwrp)
            + self.reserved[4:]
        )

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_optcr(cls, optcr: int, *, sectors: int = WRP_SECTORS) -> OptionBytes:
        """The block that FLASH_OPTCR value ``optcr`` programs (not-used bits set to 1,
        reserved bytes 0xFF): USER from bits 7:0, RDP from 15:8, nWRP from 23:16 (27:16
        with ``sectors`` 12), SPRMOD from bit 31."""
        if not 0 <= optcr <= 0xFFFF_FFFF:
            raise ValueError(f"optcr must be a 32-bit value, got {optcr!r}")
        mask = (1 << sectors) - 1
        user = (optcr & 0xEC) | _USER_NOT_USED
        nwrp = ((optcr >> 16) & mask) | (_NWRP_LOW_HALF & ~mask)
        if optcr & 0x8000_0000:
            nwrp |= _NWRP_SPRMOD
        return cls(user=user, rdp=(optcr >> 8) & 0xFF, nwrp=nwrp, sectors=sectors)

    @property
    def optcr(self) -> int:
        """The FLASH_OPTCR value that programs this block, as the register reads after a
        reset (OPTLOCK set, reserved bits 27:24 at 1 where they are no nWRP bits): the
        inverse of :meth:`from_optcr`."""
        mask = self._mask
        value = (0x0FFF & ~mask) << 16 | (self.nwrp & mask) << 16 | self.rdp << 8
        value |= (self.user & 0xEC) | 0x01
        if self.sprmod:
            value |= 0x8000_0000
        return value

    # ------------------------------------------------------------------ fields

    @property
    def rdp_level(self) -> RdpLevel:
        """The read-protection level the RDP byte selects."""
        if self.rdp == RDP_LEVEL_0:
            return RdpLevel.LEVEL_0
        if self.rdp == RDP_LEVEL_2:
            return RdpLevel.LEVEL_2
        return RdpLevel.LEVEL_1

    @property
    def bor_level(self) -> BorLevel:
        """The brown-out reset level."""
        return BorLevel((self.user & _USER_BOR_MASK) >> _USER_BOR_SHIFT)

    @property
    def wdg_sw(self) -> bool:
        """True: software watchdog (started by software); False: hardware watchdog (always on)."""
        return bool(self.user & _USER_WDG_SW)

    @property
    def nrst_stop(self) -> bool:
        """True: no reset when entering Stop mode."""
        return bool(self.user & _USER_NRST_STOP)

    @property
    def nrst_stdby(self) -> bool:
        """True: no reset when entering Standby mode."""
        return bool(self.user & _USER_NRST_STDBY)

    @property
    def sprmod(self) -> bool:
        """True: the nWRP bits select PCROP (proprietary code read-out protection), active
        high; False (default): they select write protection, active low."""
        return bool(self.nwrp & _NWRP_SPRMOD)

    @property
    def write_protected(self) -> frozenset[int]:
        """Sector numbers (0-7, or 0-11 with ``sectors`` 12) that cannot be erased or
        programmed. With SPRMOD clear these are the sectors whose nWRP bit is 0; with
        SPRMOD set, the PCROP sectors (nWRP bit 1), which RM0090 §3.7.4 says are
        write-protected too."""
        bits = self.nwrp & self._mask
        active = bits if self.sprmod else ~bits
        return frozenset(i for i in range(self.sectors) if active >> i & 1)

    @property
    def pcrop(self) -> frozenset[int]:
        """Sectors under PCROP (execute-only): empty unless SPRMOD is set."""
        return self.write_protected if self.sprmod else frozenset()

    def is_write_protected(self, sector: int) -> bool:
        """Whether flash sector ``sector`` is write-protected (False beyond the modelled
        bits: 7, or 11 with ``sectors`` 12)."""
        return sector in self.write_protected

    # ------------------------------------------------------------------ changes

    def with_rdp(self, level: int, *, allow_level_2: bool = False) -> OptionBytes:
        """A copy at read-protection ``level`` (0, 1 or 2). Level 2 is permanent and needs
        ``allow_level_2=True``; lowering 1 → 0 mass-erases the flash on the device."""
        lvl = RdpLevel(level)
        if lvl is RdpLevel.LEVEL_2 and not allow_level_2:
            raise ValueError("RDP level 2 is irreversible; pass allow_level_2=True to build it")
        raw = {0: RDP_LEVEL_0, 1: RDP_LEVEL_1, 2: RDP_LEVEL_2}[lvl.value]
        if lvl is RdpLevel.LEVEL_1 and self.rdp_level is RdpLevel.LEVEL_1:
            raw = self.rdp
        return dataclasses.replace(self, rdp=raw)

    def with_write_protection(self, sectors: Iterable[int]) -> OptionBytes:
        """A copy where exactly ``sectors`` (numbers 0-7, or 0-11 with ``sectors`` 12) are
        write-protected (in the polarity SPRMOD selects); a number beyond them is a
        :class:`~dfuse.errors.UsageError` (a ``ValueError``)."""
        want = _check_sectors(sectors, self.sectors)
        bits = 0
        for i in range(self.sectors):
            active = i in want
            if active == self.sprmod:
                bits |= 1 << i
        return dataclasses.replace(self, nwrp=(self.nwrp & ~self._mask) | bits)

    def with_sectors_protected(self, sectors: Iterable[int]) -> OptionBytes:
        """A copy with ``sectors`` added to the write-protected ones."""
        return self.with_write_protection(
            self.write_protected | _check_sectors(sectors, self.sectors)
        )

    def with_sectors_unprotected(self, sectors: Iterable[int]) -> OptionBytes:
        """A copy with ``sectors`` removed from the write-protected ones."""
        return self.with_write_protection(
            self.write_protected - _check_sectors(sectors, self.sectors)
        )

    def with_sprmod(self, enabled: bool) -> OptionBytes:
        """A copy with SPRMOD set or cleared (the nWRP bits are kept as they are, so the set
        of protected sectors flips meaning; set the sectors afterwards)."""
        nwrp = self.nwrp | _NWRP_SPRMOD if enabled else self.nwrp & ~_NWRP_SPRMOD
        return dataclasses.replace(self, nwrp=nwrp)

    def with_bor_level(self, level: BorLevel | int) -> OptionBytes:
        """A copy with brown-out reset level ``level``."""
        bor = BorLevel(level)
        user = (self.user & ~_USER_BOR_MASK) | bor.value << _USER_BOR_SHIFT
        return dataclasses.replace(self, user=user)

    def with_user_flags(
        self,
        *,
        wdg_sw: bool | None = None,
        nrst_stop: bool | None = None,
        nrst_stdby: bool | None = None,
    ) -> OptionBytes:
        """A copy with the given USER flags changed (``None`` leaves a flag as it is)."""
        user = self.user
        for flag, bit in ((wdg_sw, _USER_WDG_SW), (nrst_stop, _USER_NRST_STOP)):
            if flag is not None:
                user = user | bit if flag else user & ~bit
        if nrst_stdby is not None:
            user = user | _USER_NRST_STDBY if nrst_stdby else user & ~_USER_NRST_STDBY
        return dataclasses.replace(self, user=user)

    # ------------------------------------------------------------------ presentation

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable summary (for ``--json`` output)."""
        return {
            "rdp_level": int(self.rdp_level),
            "rdp_raw": self.rdp,
            "write_protected": sorted(self.write_protected),
            "sprmod": self.sprmod,
            "pcrop": sorted(self.pcrop),
            "bor_level": self.bor_level.name,
            "wdg_sw": self.wdg_sw,
            "nrst_stop": self.nrst_stop,
            "nrst_stdby": self.nrst_stdby,
            "user_raw": self.user,
            "nwrp_raw": self.nwrp,
            "optcr": self.optcr,
            "bytes": self.to_bytes().hex(),
        }

    def describe(self) -> str:
        """A few human-readable lines: RDP level, protected sectors, BOR, flags."""
        wp = ", ".join(str(s) for s in sorted(self.write_protected)) or "none"
        kind = "PCROP (read and write)" if self.sprmod else "write-protected"
        lines = [
            f"RDP       level {int(self.rdp_level)} (0x{self.rdp:02X}): "
            f"{self.rdp_level.description}",
            f"sectors   {kind}: {wp}",
            f"BOR       {self.bor_level.description}",
            f"watchdog  {'software' if self.wdg_sw else 'hardware'}",
            f"stop      {'no reset' if self.nrst_stop else 'reset'} on entering Stop mode",
            f"standby   {'no reset' if self.nrst_stdby else 'reset'} on entering Standby mode",
            f"OPTCR     0x{self.optcr:08X}",
        ]
        return "\n".join(lines)


#: The factory option bytes (FLASH_OPTCR 0x0FFFAAED): level 0, no write protection,
#: BOR off, software watchdog, no reset on Stop/Standby.
FACTORY_DEFAULT = OptionBytes.from_optcr(FACTORY_OPTCR)


# --------------------------------------------------------------------------- OTP


@dataclass(frozen=True)
class OtpArea:
    """The F4 one-time-programmable area: 16 blocks of 32 bytes and 16 lock bytes.

    Attributes:
        blocks: the 16 data blocks (32 bytes each) from 0x1FFF7800.
        locks: the 16 lock bytes from 0x1FFF7A00 (0x00 locks a block, 0xFF when blank).

    OTP bits can only go from 1 to 0, and nothing erases them: :meth:`with_block` refuses a
    change that would need a 0 to become 1, and a locked block.
    """

    blocks: tuple[bytes, ...]
    locks: bytes

    def __post_init__(self) -> None:
        if len(self.blocks) != OTP_BLOCKS or any(
            not isinstance(b, bytes) or len(b) != OTP_BLOCK_SIZE for b in self.blocks
        ):
            raise ValueError(f"an OTP area has {OTP_BLOCKS} blocks of {OTP_BLOCK_SIZE} bytes")
        if not isinstance(self.locks, bytes) or len(self.locks) != OTP_BLOCKS:
            raise ValueError(f"an OTP area has {OTP_BLOCKS} lock bytes")

    @classmethod
    def blank(cls) -> OtpArea:
        """A never-programmed area: every byte 0xFF, nothing locked."""
        return cls((b"\xff" * OTP_BLOCK_SIZE,) * OTP_BLOCKS, b"\xff" * OTP_BLOCKS)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> OtpArea:
        """Decode the 528 bytes read from 0x1FFF7800 (data then lock bytes);
        :class:`~dfuse.errors.OptionBytesError` for another size."""
        raw = bytes(data)
        if len(raw) != OTP_SIZE:
            raise OptionBytesError(
                "OTP area has the wrong size",
                offset=min(len(raw), OTP_SIZE),
                expected=f"{OTP_SIZE} bytes ({OTP_BLOCKS}×{OTP_BLOCK_SIZE} + {OTP_BLOCKS} locks)",
                found=f"{len(raw)} bytes",
            )
        blocks = tuple(raw[i : i + OTP_BLOCK_SIZE] for i in range(0, 512, OTP_BLOCK_SIZE))
        return cls(blocks, raw[512:])

    def to_bytes(self) -> bytes:
        """The 528 bytes, data then lock bytes."""
        return b"".join(self.blocks) + self.locks

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @property
    def locked(self) -> frozenset[int]:
        """Numbers of the locked blocks (lock byte 0x00)."""
        return frozenset(i for i, b in enumerate(self.locks) if b == 0x00)

    @property
    def blank_blocks(self) -> frozenset[int]:
        """Numbers of the blocks still all 0xFF."""
        return frozenset(i for i, b in enumerate(self.blocks) if b == b"\xff" * OTP_BLOCK_SIZE)

    def is_locked(self, block: int) -> bool:
        """Whether ``block`` (0-15) is locked."""
        return self.locks[_check_block(block)] == 0x00

    @staticmethod
    def block_address(block: int) -> int:
        """Address of data block ``block`` (0x1FFF7800 + 32 × block)."""
        return OTP_ADDRESS + _check_block(block) * OTP_BLOCK_SIZE

    @staticmethod
    def lock_address(block: int) -> int:
        """Address of the lock byte of ``block`` (0x1FFF7A00 + block)."""
        return OTP_LOCK_ADDRESS + _check_block(block)

    def can_write(self, block: int, data: bytes) -> bool:
        """Whether ``data`` (32 bytes) can be programmed into ``block``: not locked, and no
        bit has to go from 0 back to 1."""
        old = self.blocks[_check_block(block)]
        if len(data) != OTP_BLOCK_SIZE:
            raise ValueError(f"an OTP block is {OTP_BLOCK_SIZE} bytes, got {len(data)}")
        return not self.is_locked(block) and all(
            n & ~o == 0 for o, n in zip(old, data, strict=True)
        )

    def with_block(self, block: int, data: bytes) -> OtpArea:
        """A copy with ``block`` programmed to ``data``; ValueError if it is locked or the
        data would need a 0 bit to become 1."""
        if not self.can_write(block, data):
            reason = "is locked" if self.is_locked(block) else "would need bits set back to 1"
            raise ValueError(f"OTP block {block} cannot be programmed: it {reason}")
        blocks = list(self.blocks)
        blocks[block] = bytes(data)
        return OtpArea(tuple(blocks), self.locks)

    def with_lock(self, block: int) -> OtpArea:
        """A copy with ``block`` locked (its lock byte 0x00)."""
        locks = bytearray(self.locks)
        locks[_check_block(block)] = 0x00
        return OtpArea(self.blocks, bytes(locks))

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable summary."""
        return {
            "blocks": [b.hex() for b in self.blocks],
            "locked": sorted(self.locked),
            "blank": sorted(self.blank_blocks),
        }

    def describe(self) -> str:
        """One line per block: number, address, lock state, contents."""
        lines = []
        for i, b in enumerate(self.blocks):
            state = "locked" if self.is_locked(i) else "open"
            content = "blank" if i in self.blank_blocks else b.hex()
            lines.append(f"block {i:2d} 0x{self.block_address(i):08X} {state:6s} {content}")
        return "\n".join(lines)


def _check_block(block: int) -> int:
    if not isinstance(block, int) or not 0 <= block < OTP_BLOCKS:
        raise ValueError(f"OTP block numbers are 0..{OTP_BLOCKS - 1}, got {block!r}")
    return block
