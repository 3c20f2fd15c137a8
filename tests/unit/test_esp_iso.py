"""The ESP image (mkfs.fat + mtools, no mounting) and the hybrid ISO (xorriso): files read back
with mtools, the FAT sized to its content, the ISO's El Torito EFI entry and GPT ESP pointing at
the same single copy of the ESP, Rock Ridge and Joliet names, loader.conf. (Booting that ISO as a
CD and as a disk is tests/vm/test_uki_boot.py.)"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pycdlib
import pytest

from levitate.leviso.esp import build_esp, esp_files, esp_read, esp_size
from levitate.leviso.iso import ESP_TYPE_GUID, build_iso, iso_report, loader_conf, xorriso_command
from levitate.util.errors import LevitateError
from tests.cheat_aware import cheat_aware

MIB = 1 << 20
_missing = [t for t in ("mkfs.fat", "mmd", "mcopy", "mdir", "mtype", "xorriso") if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"missing host tools: {', '.join(_missing)}")


def blob(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def esp_inputs(tmp_path) -> dict[str, Path]:
    src = tmp_path / "src"
    conf = src / "loader.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(loader_conf("levitateos-live.efi", 3))
    return {
        "EFI/BOOT/BOOTX64.EFI": blob(src / "sdboot.efi", 120_000),
        "EFI/Linux/levitateos-live.efi": blob(src / "live.efi", 5 * MIB + 123),
        "EFI/Linux/levitateos-emergency.efi": blob(src / "emergency.efi", 5 * MIB + 7),
        "loader/loader.conf": conf,
    }


def fat_label(image: Path) -> str:
    boot = image.read_bytes()[:512]
    fat32 = struct.unpack_from("<H", boot, 22)[0] == 0        # BPB_FATSz16 is 0 only on FAT32
    return boot[71:82].decode().rstrip() if fat32 else boot[43:54].decode().rstrip()


# -- ESP ----------------------------------------------------------------------------------------------

@cheat_aware(
    protects="every file lands in the ESP under its path, byte for byte",
    cheats=["checking only that mkfs.fat ran", "listing names without reading content"],
    consequence="firmware finds no BOOTX64.EFI or a truncated UKI: the medium does not boot",
)
def test_esp_holds_the_files(esp_inputs, tmp_path):
    image = build_esp(esp_inputs, tmp_path / "esp.img")
    assert esp_files(image) == sorted(esp_inputs)
    for name, src in esp_inputs.items():
        assert esp_read(image, name) == src.read_bytes(), name
    assert fat_label(image) == "LEVISO_EFI"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_esp_sized_to_its_content(esp_inputs, tmp_path):
    content = sum(p.stat().st_size for p in esp_inputs.values())
    image = build_esp(esp_inputs, tmp_path / "esp.img")
    size = image.stat().st_size
    assert size == esp_size(esp_inputs)
    assert size % MIB == 0
    assert content < size <= content * 1.05 + 2 * MIB


def test_esp_label_and_volume_id(esp_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = build_esp(esp_inputs, tmp_path / "a.img", label="TEST_EFI")
    b = build_esp(esp_inputs, tmp_path / "b.img", label="TEST_EFI")
    assert fat_label(a) == "TEST_EFI"
    serial = a.read_bytes()[39:43]                                  # BS_VolID (FAT12/16)
    assert serial == b.read_bytes()[39:43] == struct.pack("<I", 1700000000)


def test_esp_refuses_bad_input(esp_inputs, tmp_path):
    out = tmp_path / "esp.img"
    with pytest.raises(LevitateError, match="label"):
        build_esp(esp_inputs, out, label="LEVITATE_ESP")            # 12 characters: FAT allows 11
    with pytest.raises(LevitateError, match="same file"):
        build_esp({**esp_inputs, "efi/boot/bootx64.efi": esp_inputs["EFI/BOOT/BOOTX64.EFI"]}, out)
    with pytest.raises(LevitateError, match="not found"):
        build_esp({"EFI/BOOT/BOOTX64.EFI": tmp_path / "missing"}, out)
    with pytest.raises(LevitateError, match="bad path"):
        build_esp({"../evil": esp_inputs["loader/loader.conf"]}, out)
    assert not out.exists()


# -- loader.conf --------------------------------------------------------------------------------------

def test_loader_conf():
    text = loader_conf("LevitateOS-Live.efi", 3)
    lines = text.splitlines()
    assert "timeout 3" in lines
    assert "default levitateos-live.efi" in lines       # systemd-boot compares lower-cased ids
    assert "editor yes" in lines and text.endswith("\n")
    assert "timeout 0" in loader_conf("x.efi", 0)
    with pytest.raises(ValueError):
        loader_conf("two words", 1)
    with pytest.raises(ValueError):
        loader_conf("x.efi", -1)


# -- ISO ----------------------------------------------------------------------------------------------

@pytest.fixture
def built(esp_inputs, tmp_path):
    esp = build_esp(esp_inputs, tmp_path / "esp.img")
    tree = tmp_path / "tree"
    blob(tree / "live" / "filesystem.erofs", 3 * MIB)
    blob(tree / "live" / "live.erofs", 200_000)
    blob(tree / "boot" / "vmlinuz", 1 * MIB)
    blob(tree / "boot" / "initramfs.img", 500_000)
    (tree / "loader").mkdir()
    shutil.copy(esp_inputs["loader/loader.conf"], tree / "loader" / "loader.conf")
    iso = build_iso(tree, esp, tmp_path / "out" / "levitateos.iso", volume_label="LEVITATEOS")
    return tree, esp, iso


@cheat_aware(
    protects="a UEFI-only hybrid layout: an El Torito EFI entry and a GPT EFI system partition, both "
             "the same single copy of the ESP",
    cheats=["checking that xorriso exited 0", "checking only that some El Torito entry exists",
            "embedding the ESP in the tree too and pointing El Torito at that copy"],
    consequence="the ISO boots as a CD but not from a USB stick (or the reverse), or is twice as big",
)
def test_iso_el_torito_and_gpt_share_the_esp(built):
    tree, esp, iso = built
    report = iso_report(iso)
    assert report["volume_id"] == "LEVITATEOS"
    [entry] = report["el_torito"]
    assert entry["platform_id"] == 0xEF and entry["emulation"] == "none" and entry["bootable"]
    assert entry["path"] is None                                         # not a file in the tree
    [part] = [p for p in report["gpt"] if p["esp"]]
    assert entry["partition"] == part["index"] == 2
    assert part["type"] == ESP_TYPE_GUID
    assert part["start"] == entry["lba"] * 4 and part["size"] * 512 == esp.stat().st_size
    assert report["efi_boot_from_esp"]
    assert [m["type"] for m in report["mbr"]] == [0xEE]                 # protective MBR only: UEFI only
    data = iso.read_bytes()
    assert data[part["start"] * 512: part["start"] * 512 + esp.stat().st_size] == esp.read_bytes()
    assert data.count(esp.read_bytes()[:4096]) == 1                     # stored once
    tree_bytes = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    assert iso.stat().st_size < tree_bytes + esp.stat().st_size + 2 * MIB


def test_iso_tree_with_rock_ridge_and_joliet(built):
    tree, _, iso = built
    cd = pycdlib.PyCdlib()
    cd.open(str(iso))
    try:
        assert cd.has_rock_ridge() and cd.has_joliet()
        for path in ("/live/filesystem.erofs", "/live/live.erofs", "/boot/vmlinuz", "/boot/initramfs.img",
                     "/loader/loader.conf"):
            out = bytearray()

            class Sink:
                def write(self, b):
                    out.extend(b)

            cd.get_file_from_iso_fp(Sink(), rr_path=path)
            assert bytes(out) == (tree / path.lstrip("/")).read_bytes(), path
        assert cd.get_record(joliet_path="/live/filesystem.erofs") is not None
    finally:
        cd.close()


def test_iso_command_is_uefi_only_hybrid(tmp_path):
    cmd = xorriso_command(tmp_path / "tree", tmp_path / "esp.img", tmp_path / "x.iso", volume_label="L")
    assert cmd[:3] == ["xorriso", "-as", "mkisofs"]
    assert "-isohybrid-mbr" not in cmd and "-b" not in cmd and "-eltorito-boot" not in cmd   # no BIOS
    i = cmd.index("-e")
    assert cmd[i + 1] == "--interval:appended_partition_2:all::" and cmd[i + 2] == "-no-emul-boot"


def test_iso_refuses_bad_input(built, tmp_path):
    tree, esp, _ = built
    out = tmp_path / "bad.iso"
    with pytest.raises(LevitateError, match="label"):
        build_iso(tree, esp, out, volume_label="levitate os")
    with pytest.raises(LevitateError, match="ESP image"):
        build_iso(tree, tmp_path / "missing.img", out, volume_label="LEVITATEOS")
    with pytest.raises(LevitateError, match="tree"):
        build_iso(tmp_path / "nowhere", esp, out, volume_label="LEVITATEOS")
    assert not out.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["levitateos.iso"]
