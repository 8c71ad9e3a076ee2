"""Faults on the wire: a fault matrix and seeded random fault schedules for ``download``.

Every run builds a fresh simulated STM32F411 (:class:`dfuse.sim.Stm32F411`) holding an
"old firmware", injects faults (:mod:`dfuse.sim.faults`) and calls
:meth:`dfuse.device.DfuDevice.download` with ``verify=True``. The verdict looks at the
simulator's memory directly (``peek``), never at what the host believes:

* **success** — ``download`` returned and the device holds the image;
* **clear error** — ``download`` raised a :class:`~dfuse.errors.DfuseError` whose
  message names the fault and the phase;
* **unclear error** — it raised a DfuseError that does not say what and where
  (counted, and a failure of the matrix);
* **silent corruption** — ``download`` returned but the memory differs (must be 0);
* **escaped exception** — anything that is not a DfuseError (must be 0).

Then recovery: the host gets the device back from whatever state it was left in (the
same :class:`DfuDevice` object if the device stayed on the bus, else a fresh
:meth:`DfuDevice.open` once it is back), and a second ``download`` must succeed and
verify. A device that cannot be made to take the image again is **unrecovered**
(must be 0).

``scripts/fault_schedules.py`` runs the 1,000-schedule campaign;
``tests/reliability/test_faults.py`` runs the matrix and a small seed set in CI.
"""

from __future__ import annotations

import enum
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field

from dfuse.device import DfuDevice
from dfuse.errors import DfuseError
from dfuse.protocol.constants import Request
from dfuse.sim import Event, Fault, FaultKind, SimBackend, Stm32F411

__all__ = [
    "BASE",
    "MATRIX_KINDS",
    "PHASES",
    "Cell",
    "MatrixKind",
    "Phase",
    "Rig",
    "Run",
    "ScheduleSummary",
    "Verdict",
    "attempt",
    "faults_for",
    "recover",
    "run_cell",
    "run_matrix",
    "run_option_schedule",
    "run_schedule",
    "run_schedules",
]

BASE = 0x0800_0000
#: Where the matrix image goes: the last 4 KiB of sector 0 and into sector 1, so that the
#: download erases two sectors and writes four blocks (2048, 2048, 2048, 100 bytes).
MATRIX_ADDRESS = BASE + 0x3000
MATRIX_LENGTH = 3 * 2048 + 100


class Phase(enum.StrEnum):
    """Where in a download a fault strikes."""

    OPEN = "open"
    ERASE = "erase"
    FIRST_BLOCK = "first block"
    MIDDLE_BLOCK = "middle block"
    LAST_BLOCK = "last block"
    VERIFY = "verify"
    LEAVE = "leave"


PHASES: tuple[Phase, ...] = tuple(Phase)


class MatrixKind(enum.StrEnum):
    """The fault kinds of the matrix (request-level kinds hit a request of the phase:
    ``@req`` its DNLOAD/UPLOAD, ``@poll`` the GETSTATUS that follows it)."""

    STALL_REQ = "stall@req"
    STALL_POLL = "stall@poll"
    TIMEOUT_REQ = "timeout@req"
    TIMEOUT_POLL = "timeout@poll"
    DISCONNECT_REQ = "disconnect@req"
    DISCONNECT_POLL = "disconnect@poll"
    ERR_WRITE = "errWRITE"
    ERR_ERASE = "errERASE"
    BUSY_LONGER = "busy longer than reported"
    BUSY_FOREVER = "busy past the host's limit"
    POWER_LOSS_ERASE = "power loss mid-erase"
    POWER_LOSS_WRITE = "power loss mid-write"
    BOOT_ERROR = "start in dfuERROR"


MATRIX_KINDS: tuple[MatrixKind, ...] = tuple(MatrixKind)

#: Words one of which an error message must contain to "name the fault".
FAULT_WORDS: dict[MatrixKind, tuple[str, ...]] = {
    MatrixKind.STALL_REQ: ("stall",),
    MatrixKind.STALL_POLL: ("stall",),
    MatrixKind.TIMEOUT_REQ: ("timed out", "timeout"),
    MatrixKind.TIMEOUT_POLL: ("timed out", "timeout"),
    MatrixKind.DISCONNECT_REQ: ("gone", "no such device", "disconnect"),
    MatrixKind.DISCONNECT_POLL: ("gone", "no such device", "disconnect"),
    MatrixKind.ERR_WRITE: ("errwrite",),
    MatrixKind.ERR_ERASE: ("errerase",),
    MatrixKind.BUSY_LONGER: ("busy", "dfudnbusy", "timed out"),
    MatrixKind.BUSY_FOREVER: ("busy", "dfudnbusy", "timed out"),
    MatrixKind.POWER_LOSS_ERASE: ("gone", "no such device", "disconnect"),
    MatrixKind.POWER_LOSS_WRITE: ("gone", "no such device", "disconnect"),
    MatrixKind.BOOT_ERROR: ("errfirmware", "dfuerror"),
}

#: Words one of which an error message must contain to "name the phase".
PHASE_WORDS: dict[Phase, tuple[str, ...]] = {
    Phase.OPEN: ("open",),
    Phase.ERASE: ("erasing sector",),
    Phase.FIRST_BLOCK: ("writing block 2 ",),
    Phase.MIDDLE_BLOCK: ("writing block 3 ",),
    Phase.LAST_BLOCK: ("writing block 5 ",),
    Phase.VERIFY: ("verif", "reading 0x"),
    Phase.LEAVE: ("leav",),
}


#: Words of which an error message contains one when it says what the host was doing.
OPERATION_WORDS = (
    "erasing", "writing", "reading", "verif", "setting", "leaving", "open", "waiting",
)  # fmt: skip


class Verdict(enum.StrEnum):
    """How one ``download`` ended, judged against the simulator's memory."""

    SUCCESS = "success"
    CLEAR_ERROR = "clear error"
    UNCLEAR_ERROR = "unclear error"
    SILENT_CORRUPTION = "SILENT CORRUPTION"
    ESCAPED = "ESCAPED EXCEPTION"


@dataclass(slots=True)
class Rig:
    """One simulated board on its own bus, holding an old firmware."""

    chip: Stm32F411
    backend: SimBackend
    old: bytes

    @classmethod
    def build(cls, faults: list[Fault], *, seed: int = 0, serial: str = "FAULTLAB") -> Rig:
        """A fresh board whose first 64 KiB hold pseudo-random "old firmware"."""
        rng = random.Random(seed ^ 0x5EED)
        chip = Stm32F411(serial=serial, faults=faults, seed=seed)
        old = rng.randbytes(0x10000)
        chip.poke(BASE, old)
        return cls(chip, SimBackend([chip]), old)

    def holds(self, address: int, data: bytes) -> bool:
        """Whether the device's memory holds ``data`` at ``address`` (read by peek)."""
        return self.chip.peek(address, len(data)) == data

    def settle(self, seconds: float = 3.0) -> None:
        """Let virtual time pass so that a dropped device comes back, then poll."""
        self.backend.clock.sleep(seconds)
        self.backend.poll()

    def bring_back(self) -> None:
        """What a person does when the board is not on the bus: wait; if it jumped to
        the application or stays away, reset it into the bootloader (BOOT0 high)."""
        self.settle()
        if not self.chip.connected:
            self.chip.reset_to_bootloader(0.1)
            self.settle()
        if not self.chip.connected:  # unplugged for good: plug it in again
            self.chip.plug()
            self.settle(0.1)


@dataclass(slots=True)
class Run:
    """The outcome of one download attempt."""

    verdict: Verdict
    error: str = ""
    error_type: str = ""

    @property
    def bad(self) -> bool:
        """Silent corruption or an escaped exception."""
        return self.verdict in (Verdict.SILENT_CORRUPTION, Verdict.ESCAPED)


def attempt(
    rig: Rig,
    device: DfuDevice | None,
    address: int,
    image: bytes,
    *,
    leave: bool = False,
    words: tuple[tuple[str, ...], ...] = (),
    busy_timeout: float = 30.0,
    incremental: bool = False,
) -> tuple[Run, DfuDevice | None]:
    """One ``download`` (opening the device first when ``device`` is None).

    Returns the verdict and the device object (None when it could not be opened or was
    closed). ``words``: groups of words; an error must contain one word of each group
    to be "clear" (no groups: any non-empty message is clear). ``incremental``: read
    back first and rewrite only the sectors that differ.
    """
    dev = device
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dev is None:
                dev = DfuDevice.open(backend=rig.backend, busy_timeout=busy_timeout)
            if incremental:
                dev.download(image, address=address, leave=leave, incremental=True)
            else:
                dev.download(image, address=address, verify=True, leave=leave)
    except DfuseError as exc:
        text = str(exc)
        lower = text.lower()
        clear = bool(text) and all(any(w in lower for w in group) for group in words)
        verdict = Verdict.CLEAR_ERROR if clear else Verdict.UNCLEAR_ERROR
        return Run(verdict, text, type(exc).__name__), _alive(dev)
    except Exception as exc:
        return Run(Verdict.ESCAPED, f"{type(exc).__name__}: {exc}", type(exc).__name__), None
    if not rig.holds(address, image):
        return Run(Verdict.SILENT_CORRUPTION, "download returned but memory differs"), None
    return Run(Verdict.SUCCESS), _alive(dev)


def _alive(dev: DfuDevice | None) -> DfuDevice | None:
    if dev is None or getattr(dev, "_closed", False):
        return None
    return dev


def recover(
    rig: Rig,
    device: DfuDevice | None,
    address: int,
    image: bytes,
    *,
    attempts: int = 3,
    incremental: bool = False,
) -> tuple[bool, str, int]:
    """Get the device back and download ``image`` again until it verifies.

    First on the same ``device`` object if there is one and the board is still on the
    bus, then through fresh opens. Returns (recovered, last error, attempts used).
    """
    last = ""
    dev = device if rig.chip.connected else None
    for n in range(1, attempts + 1):
        if dev is None:
            rig.bring_back()
        run, dev = attempt(rig, dev, address, image, incremental=incremental)
        if run.verdict is Verdict.SUCCESS:
            if dev is not None:
                dev.close()
            return True, "", n
        if run.bad:
            return False, f"{run.verdict}: {run.error}", n
        last = f"{run.error_type}: {run.error}"
        if dev is not None:
            dev.close()
        dev = None
    return False, last, attempts


# --------------------------------------------------------------------------- the matrix


def _matrix_image(seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(MATRIX_LENGTH)


def _reference_log(image: bytes) -> list[tuple[str, int, int]]:
    """The class requests of a fault-free download with leave, as (name, wValue, length)."""
    rig = Rig.build([])
    dev = DfuDevice.open(backend=rig.backend)
    dev.download(image, address=MATRIX_ADDRESS, verify=True, leave=True)
    names = {r.name for r in Request}
    return [
        (r.name, r.setup.value, r.data_length or r.setup.length)
        for r in rig.chip.request_log
        if r.name in names
    ]


@dataclass(frozen=True, slots=True)
class _Landmarks:
    """Occurrence numbers (1-based, per request name) of the requests of each phase."""

    dnload: dict[Phase, int]
    upload_verify: int
    poll_after: dict[Phase, int]


def _landmarks(log: list[tuple[str, int, int]]) -> _Landmarks:
    counts: Counter[str] = Counter()
    numbered: list[tuple[str, int, int, int]] = []
    for name, value, length in log:
        counts[name] += 1
        numbered.append((name, value, length, counts[name]))
    dnloads = [(i, v, n, k) for i, (name, v, n, k) in enumerate(numbered) if name == "DNLOAD"]
    data_blocks = [d for d in dnloads if d[1] >= 2 and d[2] > 0]
    first_upload = next(i for i, e in enumerate(numbered) if e[0] == "UPLOAD")
    leave = next(d for d in dnloads if d[2] == 0)
    where = {
        Phase.ERASE: dnloads[0],
        Phase.FIRST_BLOCK: data_blocks[0],
        Phase.MIDDLE_BLOCK: data_blocks[1],
        Phase.LAST_BLOCK: data_blocks[-1],
        Phase.LEAVE: leave,
    }
    verify_set_address = max(d for d in dnloads if d[0] < first_upload)
    polls: dict[Phase, int] = {}
    for phase, d in [*where.items(), (Phase.VERIFY, verify_set_address)]:
        after = next(e for e in numbered[d[0] :] if e[0] == "GETSTATUS")
        polls[phase] = after[3]
    polls[Phase.OPEN] = 1
    return _Landmarks({p: d[3] for p, d in where.items()}, numbered[first_upload][3], polls)


_BLOCK_NTH = {Phase.FIRST_BLOCK: 1, Phase.MIDDLE_BLOCK: 2, Phase.LAST_BLOCK: 4}
_OPERATION_EVENT = {
    Phase.ERASE: (Event.ERASE, 1),
    Phase.FIRST_BLOCK: (Event.WRITE, 1),
    Phase.MIDDLE_BLOCK: (Event.WRITE, 2),
    Phase.LAST_BLOCK: (Event.WRITE, 4),
    Phase.VERIFY: (Event.READ, 1),
    Phase.LEAVE: (Event.LEAVE, 1),
}


def faults_for(kind: MatrixKind, phase: Phase, marks: _Landmarks) -> list[Fault] | None:
    """The faults that make ``kind`` strike in ``phase`` (None: the cell does not exist)."""
    request_kind = {
        MatrixKind.STALL_REQ: FaultKind.STALL,
        MatrixKind.STALL_POLL: FaultKind.STALL,
        MatrixKind.TIMEOUT_REQ: FaultKind.TIMEOUT,
        MatrixKind.TIMEOUT_POLL: FaultKind.TIMEOUT,
        MatrixKind.DISCONNECT_REQ: FaultKind.DISCONNECT,
        MatrixKind.DISCONNECT_POLL: FaultKind.DISCONNECT,
    }.get(kind)
    if request_kind is not None:
        if kind.value.endswith("@poll"):
            return [Fault(request_kind, Event.GETSTATUS, nth=marks.poll_after[phase])]
        if phase is Phase.OPEN:
            return None  # the first request at open is the GETSTATUS: the @poll cell
        if phase is Phase.VERIFY:
            return [Fault(request_kind, Event.UPLOAD, nth=marks.upload_verify)]
        return [Fault(request_kind, Event.DNLOAD, nth=marks.dnload[phase])]
    if kind is MatrixKind.BOOT_ERROR:
        return [Fault(FaultKind.BOOT_ERROR, Event.BOOT, nth=1)] if phase is Phase.OPEN else None
    if phase is Phase.OPEN:
        return None  # no device operation happens while opening
    event, nth = _OPERATION_EVENT[phase]
    if kind is MatrixKind.POWER_LOSS_ERASE:
        if phase is not Phase.ERASE:
            return None
        return [Fault(FaultKind.POWER_LOSS, event, nth=nth, progress=0.5, reconnect_after=0.5)]
    if kind is MatrixKind.POWER_LOSS_WRITE:
        if phase not in _BLOCK_NTH:
            return None
        return [Fault(FaultKind.POWER_LOSS, event, nth=nth, progress=0.5, reconnect_after=0.5)]
    if kind is MatrixKind.BUSY_LONGER:
        return [Fault(FaultKind.BUSY_LONGER, event, nth=nth, extra=2.0)]
    if kind is MatrixKind.BUSY_FOREVER:
        return [Fault(FaultKind.BUSY_LONGER, event, nth=nth, extra=120.0)]
    status = {MatrixKind.ERR_WRITE: FaultKind.ERR_WRITE, MatrixKind.ERR_ERASE: FaultKind.ERR_ERASE}
    return [Fault(status[kind], event, nth=nth)]


@dataclass(slots=True)
class Cell:
    """One cell of the matrix: what happened and whether the device came back."""

    kind: MatrixKind
    phase: Phase
    faults: list[Fault]
    run: Run
    fired: int
    recovered: bool
    recovered_same_object: bool | None
    recovery_error: str = ""

    @property
    def ok(self) -> bool:
        """The cell meets the contract."""
        return (
            self.run.verdict in (Verdict.SUCCESS, Verdict.CLEAR_ERROR)
            and self.recovered
            and self.fired > 0
        )

    def line(self) -> str:
        """One line for the report."""
        head = f"{self.kind.value:>26} × {self.phase.value:<12}"
        tail = "" if self.run.verdict is Verdict.SUCCESS else f"  [{self.run.error_type}] "
        tail += self.run.error[:110]
        same = {None: "-", True: "same", False: "reopen"}[self.recovered_same_object]
        back = "recovered" if self.recovered else f"UNRECOVERED ({self.recovery_error[:80]})"
        fired = "" if self.fired else " (FAULT DID NOT FIRE)"
        return f"{head} {self.run.verdict.value:<13} {back}/{same}{fired}{tail}"


def run_cell(
    kind: MatrixKind, phase: Phase, marks: _Landmarks | None = None, *, image: bytes = b""
) -> Cell | None:
    """Run one matrix cell (None when the cell does not exist)."""
    image = image or _matrix_image()
    marks = marks or _landmarks(_reference_log(image))
    faults = faults_for(kind, phase, marks)
    if faults is None:
        return None
    rig = Rig.build(list(faults))
    words = (FAULT_WORDS[kind], PHASE_WORDS[phase])
    run, dev = attempt(rig, None, MATRIX_ADDRESS, image, leave=True, words=words, busy_timeout=30.0)
    fired = len(rig.chip.fault_log)
    same: bool | None = None
    if dev is not None and rig.chip.connected and run.verdict is not Verdict.SUCCESS:
        again, dev = attempt(rig, dev, MATRIX_ADDRESS, image)
        same = again.verdict is Verdict.SUCCESS
        if dev is not None:
            dev.close()
        if same:
            return Cell(kind, phase, faults, run, fired, True, True)
    elif dev is not None:
        dev.close()
    # the image goes elsewhere the second time too, so that a stale success cannot pass
    second = bytes(b ^ 0x5A for b in image)
    recovered, error, _n = recover(rig, None, MATRIX_ADDRESS, second)
    return Cell(kind, phase, faults, run, fired, recovered, same, error)


def run_matrix() -> list[Cell]:
    """Every existing cell of the matrix."""
    image = _matrix_image()
    marks = _landmarks(_reference_log(image))
    cells = []
    for kind in MATRIX_KINDS:
        for phase in PHASES:
            cell = run_cell(kind, phase, marks, image=image)
            if cell is not None:
                cells.append(cell)
    return cells


# --------------------------------------------------------------------------- schedules

_SCHEDULE_KINDS = (
    FaultKind.STALL,
    FaultKind.TIMEOUT,
    FaultKind.DISCONNECT,
    FaultKind.ERR_WRITE,
    FaultKind.ERR_ERASE,
    FaultKind.ERR_VERIFY,
    FaultKind.BUSY_LONGER,
    FaultKind.POWER_LOSS,
    FaultKind.BOOT_ERROR,
)
_REQUEST_EVENTS = (Event.DNLOAD, Event.UPLOAD, Event.GETSTATUS, Event.ABORT, Event.CLRSTATUS)
_OPERATION_EVENTS = (Event.ERASE, Event.WRITE, Event.READ, Event.COMMAND, Event.LEAVE)


def random_fault(rng: random.Random, blocks: int) -> Fault:
    """One random fault, timed within a download of about ``blocks`` blocks."""
    kind = rng.choice(_SCHEDULE_KINDS)
    if kind is FaultKind.BOOT_ERROR:
        return Fault(kind, Event.BOOT, nth=rng.choice((1, 1, 2, 3)))
    reconnect = rng.choice((0.05, 0.5, 2.0, None))
    if kind in (FaultKind.STALL, FaultKind.TIMEOUT) or (
        kind is FaultKind.DISCONNECT and rng.random() < 0.5
    ):
        event = rng.choice(_REQUEST_EVENTS)
        span = {Event.GETSTATUS: 3 * blocks + 10, Event.DNLOAD: blocks + 6}.get(event, blocks + 2)
        return Fault(kind, event, nth=rng.randrange(1, span + 1), reconnect_after=reconnect)
    event = rng.choice(_OPERATION_EVENTS)
    span = {Event.WRITE: blocks, Event.READ: blocks, Event.COMMAND: 4}.get(event, 3)
    return Fault(
        kind,
        event,
        nth=rng.randrange(1, max(span, 1) + 1),
        progress=rng.random(),
        extra=rng.choice((0.01, 0.5, 2.0, 10.0, 60.0)),
        reconnect_after=reconnect,
    )


@dataclass(slots=True)
class ScheduleResult:
    """One schedule: the faults, the first download's verdict, the recovery."""

    seed: int
    faults: list[Fault]
    first: Run
    fired: int
    recovered: bool
    attempts: int
    error: str = ""


@dataclass(slots=True)
class ScheduleSummary:
    """Totals over a campaign of schedules."""

    schedules: int = 0
    faults_scheduled: int = 0
    faults_fired: int = 0
    succeeded: int = 0
    clear_errors: int = 0
    unclear_errors: int = 0
    silent_corruptions: int = 0
    escaped: int = 0
    unrecovered: int = 0
    errors_without_operation: int = 0
    recovery_attempts: Counter[int] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    bad: list[ScheduleResult] = field(default_factory=list)

    def add(self, result: ScheduleResult) -> None:
        """Count one schedule."""
        self.schedules += 1
        self.faults_scheduled += len(result.faults)
        self.faults_fired += result.fired
        v = result.first.verdict
        self.succeeded += v is Verdict.SUCCESS
        self.clear_errors += v is Verdict.CLEAR_ERROR
        self.unclear_errors += v is Verdict.UNCLEAR_ERROR
        self.silent_corruptions += v is Verdict.SILENT_CORRUPTION
        self.escaped += v is Verdict.ESCAPED
        if result.first.error_type:
            self.error_types[result.first.error_type] += 1
            lower = result.first.error.lower()
            if not any(word in lower for word in OPERATION_WORDS):
                self.errors_without_operation += 1
        if result.recovered:
            self.recovery_attempts[result.attempts] += 1
        else:
            self.unrecovered += 1
        if result.first.bad or not result.recovered:
            self.bad.append(result)

    @property
    def ok(self) -> bool:
        """No silent corruption, no escaped exception, nothing unrecovered."""
        return not (self.silent_corruptions or self.escaped or self.unrecovered)

    def text(self) -> str:
        """The summary as printed by the script."""
        attempts = ", ".join(f"{k}: {v}" for k, v in sorted(self.recovery_attempts.items()))
        errors = ", ".join(f"{k} {v}" for k, v in self.error_types.most_common())
        return "\n".join(
            [
                f"schedules                 {self.schedules}",
                f"faults scheduled / fired  {self.faults_scheduled} / {self.faults_fired}",
                f"succeeded                 {self.succeeded}",
                f"failed with clear error   {self.clear_errors}"
                f"   ({self.errors_without_operation} of them do not say what the host was"
                " doing)",
                f"failed, unclear error     {self.unclear_errors}",
                f"silent corruptions        {self.silent_corruptions}   (must be 0)",
                f"escaped exceptions        {self.escaped}   (must be 0)",
                f"unrecovered               {self.unrecovered}   (must be 0)",
                f"downloads to recover      {attempts}",
                f"errors                    {errors}",
            ]
        )


def run_schedule(seed: int) -> ScheduleResult:
    """One seeded schedule: a random image over random old firmware, 2-5 random faults,
    one download (full, or incremental: read back and rewrite only what differs, with or
    without leaving DFU mode), then recovery (downloads until the image verifies, at most
    6, full or incremental)."""
    rng = random.Random(seed)
    sector_starts = (0x0000, 0x4000, 0x8000, 0xC000, 0x10000)
    address = BASE + rng.choice(sector_starts) + rng.choice((0, 0, 4, 0x100, 0x7FC))
    length = rng.choice((1, 4, 100, 2048, 2049, 5000, 9000, rng.randrange(1, 40000)))
    image = rng.randbytes(length)
    blocks = -(-length // 2048)
    faults = [random_fault(rng, blocks) for _ in range(rng.randrange(2, 6))]
    rig = Rig.build(faults, seed=seed)
    leave, incremental = rng.random() < 0.3, rng.random() < 0.3
    first, dev = attempt(rig, None, address, image, leave=leave, incremental=incremental)
    if first.verdict is Verdict.UNCLEAR_ERROR and first.error.strip():
        # a schedule has no single phase: any non-empty DfuseError message counts as clear
        first = Run(Verdict.CLEAR_ERROR, first.error, first.error_type)
    recovered, error, n = recover(
        rig, dev, address, image, attempts=6, incremental=rng.random() < 0.5
    )
    if not recovered and not error.startswith(Verdict.SILENT_CORRUPTION.value):
        # faults still pending may keep striking: clear them, as time would, and retry once
        rig.chip.faults._pending.clear()
        ok, error, _ = recover(rig, None, address, image, attempts=1)
        recovered, n = ok, n + 1
    return ScheduleResult(
        seed, faults, first, len(rig.chip.fault_log), recovered, n, "" if recovered else error
    )


def run_schedules(seeds: range) -> ScheduleSummary:
    """Run every seed and add them up."""
    summary = ScheduleSummary()
    for seed in seeds:
        summary.add(run_schedule(seed))
    return summary


_OPTION_FAULT_KINDS = (
    FaultKind.POWER_LOSS,
    FaultKind.ERR_WRITE,
    FaultKind.DISCONNECT,
    FaultKind.BUSY_LONGER,
)


def run_option_schedule(seed: int) -> ScheduleResult:
    """One seeded option-byte schedule: change the write protection of random sectors,
    through ``change_option_bytes`` or ``download(..., allow_option_bytes=True)``, with 1-3
    random faults (and half the time one on the option-byte write itself). The verdict
    compares the simulator's option bytes with what was asked; recovery changes them again
    on a freshly opened device."""
    from dfuse.file import DfuSeFile, Element, Target
    from dfuse.optionbytes import OptionBytes

    rng = random.Random(seed)
    faults = [random_fault(rng, 2) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.5:
        faults.append(
            Fault(
                rng.choice(_OPTION_FAULT_KINDS),
                Event.OPTION_WRITE,
                nth=1,
                progress=rng.random(),
                extra=rng.choice((0.5, 60.0)),
                reconnect_after=rng.choice((0.05, 0.5, None)),
            )
        )
    rig = Rig.build(faults, seed=seed)
    want = OptionBytes.parse(rig.chip.option_bytes).with_write_protection(
        rng.sample(range(8), rng.randrange(1, 4))
    )
    through_download = rng.random() < 0.5

    def change() -> Run:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with DfuDevice.open(backend=rig.backend) as dev:
                    if through_download:
                        image = DfuSeFile([Target(1, "ob", [Element(0x1FFFC000, want.to_bytes())])])
                        dev.download(image, allow_option_bytes=True)
                    else:
                        dev.change_option_bytes(want)
        except DfuseError as exc:
            return Run(Verdict.CLEAR_ERROR, str(exc) or repr(exc), type(exc).__name__)
        except Exception as exc:
            return Run(Verdict.ESCAPED, f"{type(exc).__name__}: {exc}", type(exc).__name__)
        rig.settle()
        if rig.chip.option_bytes != want.to_bytes():
            return Run(Verdict.SILENT_CORRUPTION, f"option bytes {rig.chip.option_bytes.hex()}")
        return Run(Verdict.SUCCESS)

    first = change()
    recovered, error, n = False, "", 0
    while not first.bad and not recovered and n < 6:
        n += 1
        rig.bring_back()
        again = change()
        recovered = again.verdict is Verdict.SUCCESS
        error = "" if recovered else f"{again.verdict}: {again.error}"
        if again.bad:
            break
    return ScheduleResult(seed, faults, first, len(rig.chip.fault_log), recovered, n, error)
