"""The boot layer: what makes a tree bootable, shared by leviso (the live image), recboot (an
installed system after a kernel update) and, later, a kernel-install plugin.

    initramfs  build_initramfs(root, InitramfsSpec) -> the archive; /init is init.sh beside it
    microcode  early_microcode: the uncompressed cpio of CPU updates in front of the initramfs
    cpulevel   x86-64 levels as /proc/cpuinfo flags; the level an installed system was built for

Standard library and levitate.util only: the installed system runs it with its own Python, and it
imports nothing from leviso, install or recipe.
"""
