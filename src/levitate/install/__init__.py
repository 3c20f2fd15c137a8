"""The installer: recstrap, recfstab, recchroot (pacstrap, genfstab, arch-chroot) and recboot."""
