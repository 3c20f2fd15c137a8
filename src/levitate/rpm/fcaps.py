"""File capabilities: turn rpm's FILECAPS text ("cap_net_raw=ep") into a security.capability xattr.

rpm stores each file's capabilities in libcap's text form and applies them with cap_set_file();
without them `ping` and friends lose their privileges. This is the same encoding done in Python:
libcap's text grammar (cap_from_text) and the kernel's VFS_CAP_REVISION_2 layout
(include/uapi/linux/capability.h): a little-endian magic/flags word, then permitted and
inheritable masks for capabilities 0-31 and 32-63. Effective is a single flag in files.
"""

from __future__ import annotations

import struct

from levitate.util.errors import LevitateError

XATTR_NAME = "security.capability"
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001

# Capability numbers, in order (include/uapi/linux/capability.h).
CAP_NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)
CAP_BY_NAME = {f"cap_{name}": i for i, name in enumerate(CAP_NAMES)}
ALL_CAPS = (1 << len(CAP_NAMES)) - 1
MAX_CAP = 63


class CapsError(LevitateError):
    """A capability text rpm could not have applied either."""


def _cap_number(word: str, text: str) -> int:
    word = word.strip().lower()
    if word in CAP_BY_NAME:
        return CAP_BY_NAME[word]
    if word.isdigit() and int(word) <= MAX_CAP:       # libcap accepts numbers too
        return int(word)
    raise CapsError(f"unknown capability {word!r} in {text!r}",
                    "the package's file capabilities use a name this tool does not know")


def parse_caps(text: str) -> tuple[int, int, int]:
    """libcap text -> (effective, permitted, inheritable) bit masks."""
    eff = perm = inh = 0
    for clause in text.split():
        # Split "names" from the first operator; then op/flags pairs.
        i = 0
        while i < len(clause) and clause[i] not in "=+-":
            i += 1
        names, ops = clause[:i], clause[i:]
        if not ops:
            raise CapsError(f"capability clause {clause!r} has no operator in {text!r}")
        if names in ("", "all"):
            if names == "" and ops[0] != "=":
                raise CapsError(f"capability clause {clause!r} needs names before {ops[0]!r}")
            mask = ALL_CAPS
        else:
            mask = 0
            for word in names.split(","):
                mask |= 1 << _cap_number(word, text)
        j = 0
        while j < len(ops):
            op = ops[j]
            if op not in "=+-":
                raise CapsError(f"bad capability operator {op!r} in {text!r}")
            j += 1
            flags = ""
            while j < len(ops) and ops[j] in "eipEIP":
                flags += ops[j].lower()
                j += 1
            if op == "=":
                eff, perm, inh = eff & ~mask, perm & ~mask, inh & ~mask
            elif not flags:
                raise CapsError(f"capability operator {op!r} without flags in {text!r}")
            for flag in flags:
                if op in "=+":
                    if flag == "e":
                        eff |= mask
                    elif flag == "p":
                        perm |= mask
                    else:
                        inh |= mask
                else:
                    if flag == "e":
                        eff &= ~mask
                    elif flag == "p":
                        perm &= ~mask
                    else:
                        inh &= ~mask
    return eff, perm, inh


def caps_to_xattr(text: str) -> bytes:
    """The security.capability value for libcap text, as `setcap TEXT FILE` writes it."""
    eff, perm, inh = parse_caps(text)
    if eff and eff != (perm | inh):
        # Files have one effective bit; libcap refuses anything it cannot express.
        raise CapsError(f"file capabilities {text!r}: effective must be all or none of the "
                        "permitted/inheritable capabilities")
    magic = VFS_CAP_REVISION_2 | (VFS_CAP_FLAGS_EFFECTIVE if eff else 0)
    return struct.pack("<5I", magic, perm & 0xFFFFFFFF, inh & 0xFFFFFFFF,
                       perm >> 32, inh >> 32)


def xattr_to_caps(value: bytes) -> tuple[bool, int, int]:
    """Decode a security.capability value: (effective flag, permitted, inheritable)."""
    if len(value) < 20:
        raise CapsError(f"security.capability value of {len(value)} bytes is too short")
    magic, p0, i0, p1, i1 = struct.unpack_from("<5I", value)
    if magic & VFS_CAP_REVISION_MASK not in (VFS_CAP_REVISION_2, VFS_CAP_REVISION_3):
        raise CapsError(f"unknown security.capability revision 0x{magic:08x}")
    return bool(magic & VFS_CAP_FLAGS_EFFECTIVE), p0 | p1 << 32, i0 | i1 << 32


def caps_to_text(value: bytes) -> str:
    """A readable form of an xattr value, like getcap prints (for messages and tests)."""
    eff, perm, inh = xattr_to_caps(value)
    groups: dict[str, list[str]] = {}
    for i in range(64):
        bit = 1 << i
        if not (perm | inh) & bit:
            continue
        flags = ("e" if eff else "") + ("i" if inh & bit else "") + ("p" if perm & bit else "")
        name = f"cap_{CAP_NAMES[i]}" if i < len(CAP_NAMES) else str(i)
        groups.setdefault(flags, []).append(name)
    return " ".join(f"{','.join(names)}={flags}" for flags, names in groups.items())
