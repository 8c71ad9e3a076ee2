"""Which reads the option-byte and OTP verbs do (dfuse.planning.protection.option_job,
otp_job) and how a read counts into the progress totals (RunRecord.start_read)."""

from __future__ import annotations

import pytest

from dfuse.errors import ProtocolError, UsageError
from dfuse.layout import MemoryLayout
from dfuse.planning import protection as prot
from dfuse.planning import reading, record
from dfuse.planning.download import TargetPlan
from dfuse.planning.record import RunRecord
from dfuse.progress import Phase, Progress
from dfuse.protocol.plan import Leave, Plan
from dfuse.transport.base import AltSetting, DeviceInfo, DeviceMode

# The STM32F4 ROM's alt strings (AN3156; dfu-util -l of an STM32F411).
F411_ALTS = (
    "@Internal Flash  /0x08000000/04*016Kg,01*064Kg,03*128Kg",
    "@Option Bytes  /0x1FFFC000/01*016 e",
    "@OTP Memory /0x1FFF7800/01*512 e,01*016 e",
)


def _info(*names: str) -> DeviceInfo:
    alts = tuple(AltSetting(n, name, MemoryLayout.parse(name)) for n, name in enumerate(names))
    return DeviceInfo(0x0483, 0xDF11, 0x2200, None, None, None, 1, (), 2, DeviceMode.DFU, 0,
                      alts, None)  # fmt: skip


def test_option_job_reads_the_16_byte_block_of_the_option_bytes_setting() -> None:
    assert prot.option_job(_info(*F411_ALTS), None) == (1, [(0x1FFFC000, 16)])


def test_otp_job_reads_512_bytes_and_16_lock_bytes_from_the_otp_setting() -> None:
    assert prot.otp_job(_info(*F411_ALTS)) == (2, [(0x1FFF7800, 528)])


def test_a_device_without_the_setting_is_refused() -> None:
    with pytest.raises(ProtocolError, match="no 'Option Bytes' alternate setting"):
        prot.option_job(_info(F411_ALTS[0]), None)
    with pytest.raises(ProtocolError, match="no 'OTP Memory' alternate setting"):
        prot.otp_job(_info(F411_ALTS[0]))


def test_start_read_counts_reads_into_the_read_total_and_not_verifies() -> None:
    run = RunRecord(Progress(None, {Phase.VERIFY: 100}))
    run.data += b"abc"
    assert run.start_read(Phase.READ, 10) == 3
    assert run.start_read(Phase.READ, 5) == 3
    assert [run.reading, run.start_read(Phase.VERIFY, 40), run.reading] == [
        Phase.READ,
        3,
        Phase.VERIFY,
    ]
    assert run.report.totals == {Phase.READ: 15, Phase.VERIFY: 100}


@pytest.mark.parametrize(
    ("device_bytes", "max_length", "expected"),
    [
        (5000, 1 << 24, [(0, 2048), (1, 2048), (2, 2048)]),  # the third comes back short
        (4096, 1 << 24, [(0, 2048), (1, 2048), (2, 2048)]),  # an empty block ends it
        (5000, 3000, [(0, 2048), (1, 952)]),  # max_length reached
        (0, 100, [(0, 100)]),
    ],
)
def test_dfu_blocks_until_a_short_block_or_max_length(
    device_bytes: int, max_length: int, expected: list[tuple[int, int]]
) -> None:
    firmware, out, asked = bytes(device_bytes), bytearray(), []
    for block, n, action in reading.dfu_blocks(2048, max_length, out):
        asked.append((block, n))
        assert action == f"reading block {block}"
        out += firmware[block * 2048 : block * 2048 + n]
    assert asked == expected
    assert len(out) == min(device_bytes, max_length)


def test_dfu_blocks_wrap_wblocknum_after_65535() -> None:
    out = bytearray()
    blocks = reading.dfu_blocks(1, 65538, out)
    numbers = []
    for block, n, _action in blocks:
        numbers.append(block)
        out += bytes(n)
    assert numbers[65534:] == [65534, 65535, 0, 1]


def test_check_upload_refuses_a_plain_dfu_device_after_checking_the_range() -> None:
    flash = MemoryLayout.parse(F411_ALTS[0])
    reading.check_upload(flash, 0x08000000, 16, is_dfuse=True)
    with pytest.raises(UsageError, match=r"needs a DfuSe device; use upload_dfu\(\)"):
        reading.check_upload(None, 0, 16, is_dfuse=False)
    with pytest.raises(UsageError, match="must not be negative"):
        reading.check_upload(flash, 0x08000000, -1, is_dfuse=False)


def test_a_plain_dfu_verify_plan_reads_the_firmware_and_stays_in_dfu_mode() -> None:
    firmware = b"firmware" * 4
    plan = reading.verify_plan([(None, None, [(0, firmware)])], None, 1024, dfuse=False)
    assert not plan.dfuse
    assert [(v.address, bytes(v.data)) for v in plan.verifies] == [(0, firmware)]
    assert not record.leaves(plan)
    assert record.leaves(Plan((*plan.steps, Leave()), 1024, dfuse=False))


def test_backup_file_holds_one_target_per_plan_with_the_device_ids() -> None:
    info = _info(*F411_ALTS)
    plan = TargetPlan(0, "Internal Flash", Plan((), 2048))
    jobs = [(plan, [(0x08000000, 4), (0x08004000, 2)])]
    backup = reading.backup_file(jobs, [[(0x08000000, b"abcd"), (0x08004000, b"ef")]], info)
    assert (backup.vendor_id, backup.product_id, backup.device_version) == (0x0483, 0xDF11, 0x2200)
    (target,) = backup.targets
    assert (target.alt_setting, target.name) == (0, "Internal Flash")
    assert [(e.address, bytes(e.data)) for e in target.elements] == [
        (0x08000000, b"abcd"),
        (0x08004000, b"ef"),
    ]
