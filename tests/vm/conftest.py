"""The VM tests' shared installed system: one install per session (tests/vm/installed.py), which
test_install.py checks and test_updates.py updates, each on its own fork of the disk."""

from __future__ import annotations

import shutil

import pytest

from tests.vm.installed import InstalledSystem, install


@pytest.fixture(scope="session")
def installed_system(sample_iso, sample_server, tmp_path_factory) -> InstalledSystem:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("needs qemu-system-x86_64 and qemu-img")
    system = install(sample_iso, sample_server, tmp_path_factory.mktemp("installed"))
    print(f"\ninstalled in {system.install_seconds:.0f} s (the record follows each test that boots it)")
    return system
