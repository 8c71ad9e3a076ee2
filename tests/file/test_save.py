"""dfuse.file.save: the format follows the extension, and load() reads every one back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfuse.file import DfuSeFile, Element, FileKind, Target, kind_for_path, load, save

_BASE = 0x08000000


@st.composite
def targets(draw: st.DrawFn) -> Target:
    """A target of 1-3 non-overlapping, non-adjacent elements in the F411 flash."""
    count = draw(st.integers(1, 3))
    elements = []
    address = _BASE + draw(st.integers(0, 64))
    for _ in range(count):
        data = draw(st.binary(min_size=1, max_size=96))
        elements.append(Element(address, data))
        address += len(data) + draw(st.integers(1, 200))
    return Target(0, "Internal Flash", elements)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.dfu", FileKind.DFUSE),
        ("a.HEX", FileKind.IHEX),
        ("a.ihx", FileKind.IHEX),
        ("a.s19", FileKind.SREC),
        ("a.srec", FileKind.SREC),
        ("a.mot", FileKind.SREC),
        ("a.bin", FileKind.BINARY),
        ("a", FileKind.BINARY),
    ],
)
def test_kind_follows_the_extension(name: str, kind: FileKind) -> None:
    assert kind_for_path(name) is kind


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=targets(), ext=st.sampled_from([".hex", ".s19", ".dfu"]))
def test_text_and_dfu_formats_round_trip(tmp_path: Path, target: Target, ext: str) -> None:
    path = tmp_path / f"out{ext}"
    save(target, path, vendor_id=0x0483, product_id=0xDF11)
    back = load(path)
    assert isinstance(back, DfuSeFile)
    assert back.targets[0].segments() == target.segments()
    if ext == ".dfu":
        assert (back.vendor_id, back.product_id, back.device_version) == (0x0483, 0xDF11, 0xFFFF)
        assert back.targets[0].name == "Internal Flash"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=targets())
def test_binary_fills_gaps_with_erased_bytes(tmp_path: Path, target: Target) -> None:
    path = tmp_path / "out.bin"
    assert save(target, path) is FileKind.BINARY
    raw = path.read_bytes()
    start = target.elements[0].address
    assert len(raw) == target.elements[-1].end - start
    for element in target.elements:
        assert raw[element.address - start : element.end - start] == bytes(element.data)
    covered = {a for e in target.elements for a in range(e.address, e.end)}
    assert all(raw[i] == 0xFF for i in range(len(raw)) if start + i not in covered)


def test_a_one_target_dfuse_file_saves_as_its_target(tmp_path: Path) -> None:
    target = Target(0, "Internal Flash", [Element(_BASE, b"\x01\x02\x03")])
    save(DfuSeFile((target,), 0x0483, 0xDF11), tmp_path / "x.s19")
    loaded = load(tmp_path / "x.s19")
    assert isinstance(loaded, DfuSeFile)
    assert loaded.targets[0].segments() == target.segments()


def test_a_dfuse_file_keeps_its_own_ids(tmp_path: Path) -> None:
    image = DfuSeFile((Target(0, "F", [Element(_BASE, b"\x01")]),), 0x1209, 0x0001, 0x0200)
    save(image, tmp_path / "x.dfu", vendor_id=0x0483)
    assert DfuSeFile.from_path(tmp_path / "x.dfu") == image


def test_several_targets_fit_only_in_a_dfu_file(tmp_path: Path) -> None:
    image = DfuSeFile(
        (
            Target(0, "Flash", [Element(_BASE, b"\x01")]),
            Target(1, "OB", [Element(0x1FFFC000, b"\x02")]),
        )
    )
    with pytest.raises(ValueError, match=r"2 targets .* expected a path ending in \.dfu"):
        save(image, tmp_path / "x.hex")
    assert not (tmp_path / "x.hex").exists()
    assert save(image, tmp_path / "x.dfu") is FileKind.DFUSE
    assert load(tmp_path / "x.dfu") == image


def test_the_docstring_examples_run() -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("dfuse.file.save"))
    assert result.attempted > 0
    assert result.failed == 0
