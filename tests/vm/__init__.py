"""Tests that boot real kernels under QEMU."""
