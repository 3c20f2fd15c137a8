#!/bin/sh
# shellcheck shell=dash
# (busybox sh is ash, dash's sibling: POSIX plus `local`, which every function here uses)
# LevitateOS initramfs /init, run by busybox sh (written by levitate.boot.initramfs).
#
# Live medium (root=live:...): finds the medium by its filesystem label, stacks the live layer over
# the base image under a tmpfs upper layer at /sysroot. Installed system (root=UUID=... and the
# like): mounts that partition read-only at /sysroot (systemd checks and remounts it per fstab).
# Then moves /run, /dev, /proc and /sys into /sysroot and switch_roots to its init (systemd). Progress lines start with "LEVITATE-INIT: " on /dev/console. Every failure
# prints "LEVITATE-INIT: ERROR: <what>", what was found, "LEVITATE-INIT: emergency shell", and
# opens a shell on the console; this script never exits (PID 1 exiting is a kernel panic).
#
# Kernel command line:
#   root=live:LABEL=NAME | root=live:UUID=ID   the medium (default LABEL=@LABEL@)
#   root=UUID=ID | LABEL=NAME | PARTUUID=ID | /dev/NAME   an installed system's root partition
#   rootfstype=TYPE rootflags=OPTIONS ro|rw     how to mount it (default: detected, ro)
#   rd.live.dir=DIR            directory of the images on the medium (default live)
#   rd.live.overlay.size=SIZE  size of the tmpfs upper layer (tmpfs size=, default half of RAM)
#   rd.timeout=SECONDS         how long to wait for the medium (default 30)
#   rd.break                   a shell just before switch_root; exiting it continues the boot
#   rd.shell                   a shell on failure (always on)
#   debug                      trace this script and keep kernel messages on the console
#   init=PATH                  what to run in the new root (default /sbin/init)
#   max_loop=N                 loop devices to create up front (passed to `modprobe loop`; with 0,
#                              as on RHEL kernels, busybox mount gets each one via /dev/loop-control)
#
# /etc/levitate/initramfs.conf (written with the archive): CPU_FLAGS lists the /proc/cpuinfo flags
# the system's binaries need (the profile's [rootfs] cpu_level, e.g. x86-64-v3 for Rocky 10); a
# CPU without one of them gets one line saying so and a shell instead of a panic after switch_root.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
umask 022

LABEL_DEFAULT='@LABEL@'
MODULES_LIST=/etc/levitate/modules
CONF=/etc/levitate/initramfs.conf
MEDIA=/run/levitate/media
BASE_MNT=/run/levitate/base
LIVE_MNT=/run/levitate/live
OVERLAY_MNT=/run/levitate/overlay
NEWROOT=/sysroot

MODE=live
WANT_KIND=LABEL
WANT=$LABEL_DEFAULT
ROOT_SPEC=
ROOT_DEV=
ROOTFSTYPE=
ROOTFLAGS=
ROOT_MODE=ro
LIVE_DIR=live
OVERLAY_SIZE=
TIMEOUT=30
BREAK=
DEBUG=
NEWINIT=
MEDIUM_DEV=
MAX_LOOP=

msg() {
    echo "LEVITATE-INIT: $*" >/dev/console 2>/dev/null || echo "LEVITATE-INIT: $*"
}

error() {
    msg "ERROR: $*"
}

# Print the output of a command as indented LEVITATE-INIT lines (what was found).
detail() {
    local line
    "$@" 2>&1 | while IFS= read -r line; do msg "  $line"; done
}

dmesg_tail() {
    local line
    msg "kernel messages (last 10):"
    dmesg 2>/dev/null | tail -n 10 | while IFS= read -r line; do msg "  $line"; done
}

# An interactive shell on the console; returns when it exits.
shell() {
    if [ -c /dev/console ] && command -v setsid >/dev/null 2>&1 && command -v cttyhack >/dev/null 2>&1; then
        # A session of its own with the console as controlling tty: job control and ^C work.
        setsid cttyhack sh -i </dev/console >/dev/console 2>&1
    else
        sh -i </dev/console >/dev/console 2>&1
    fi
}

root_ready() {
    grep -q " $NEWROOT " /proc/mounts 2>/dev/null && find_init >/dev/null
}

# The init of the new root: init= from the command line, /sbin/init or systemd. A symlink
# counts (its target is absolute inside the new root, so it cannot be followed from here).
find_init() {
    local candidate
    for candidate in $NEWINIT /sbin/init /usr/lib/systemd/systemd; do
        if [ -e "$NEWROOT$candidate" ] || [ -L "$NEWROOT$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

# Called after a failure was reported: a shell until the user has mounted a root at /sysroot
# (then the boot continues) or reboots.
emergency() {
    while :; do
        msg "emergency shell"
        msg "  (fix the problem and mount the root at $NEWROOT, then exit to continue booting; 'reboot -f' to restart)"
        shell
        if root_ready; then
            msg "root found at $NEWROOT after the emergency shell: continuing"
            return 0
        fi
        error "no root mounted at $NEWROOT with an init"
    done
}

# Centiseconds since boot (/proc/uptime has two decimals; "1$f - 100" keeps "08" from being octal).
uptime_cs() {
    local up f
    read -r up _ </proc/uptime
    f=${up#*.}
    echo $(( ${up%%.*} * 100 + 1${f%"${f#??}"} - 100 ))
}

setup() {
    mkdir -p /proc /sys /dev /run /tmp "$NEWROOT"
    mount -t proc -o nosuid,nodev,noexec proc /proc
    mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
    mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || msg "WARNING: cannot mount devtmpfs on /dev"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
    # busybox modprobe reads /lib/modules/$(uname -r); kernel module requests go to /sbin/modprobe
    [ -e /proc/sys/kernel/modprobe ] && echo /sbin/modprobe >/proc/sys/kernel/modprobe
}

parse_cmdline() {
    local cmdline arg
    read -r cmdline </proc/cmdline
    set -f
    for arg in $cmdline; do
        case "$arg" in
            root=live:LABEL=*) WANT_KIND=LABEL; WANT=${arg#root=live:LABEL=} ;;
            root=live:CDLABEL=*) WANT_KIND=LABEL; WANT=${arg#root=live:CDLABEL=} ;;
            root=live:UUID=*) WANT_KIND=UUID; WANT=${arg#root=live:UUID=} ;;
            root=live:*) MODE=bad; ROOT_SPEC=${arg#root=} ;;
            root=*) MODE=disk; ROOT_SPEC=${arg#root=} ;;
            rootfstype=*) ROOTFSTYPE=${arg#rootfstype=} ;;
            rootflags=*) ROOTFLAGS=${arg#rootflags=} ;;
            ro|rw) ROOT_MODE=$arg ;;
            rd.live.dir=*) LIVE_DIR=${arg#rd.live.dir=}; LIVE_DIR=${LIVE_DIR#/} ;;
            rd.live.overlay.size=*) OVERLAY_SIZE=${arg#rd.live.overlay.size=} ;;
            rd.timeout=*) TIMEOUT=${arg#rd.timeout=} ;;
            rd.break|rd.break=*) BREAK=1 ;;
            debug|rd.debug) DEBUG=1 ;;
            init=*) NEWINIT=${arg#init=} ;;
            max_loop=*) MAX_LOOP=${arg#max_loop=} ;;
        esac
    done
    set +f
    case "$TIMEOUT" in
        ''|*[!0-9]*) msg "WARNING: rd.timeout=$TIMEOUT is not a number of seconds: using 30"; TIMEOUT=30 ;;
    esac
    case "$MODE:$ROOT_SPEC" in
        bad:*|disk:PARTLABEL=*|disk:UUID=|disk:LABEL=|disk:PARTUUID=) MODE=bad ;;
        disk:UUID=*|disk:LABEL=*|disk:PARTUUID=*|disk:/dev/?*) ;;
        disk:*) MODE=bad ;;
    esac
    case "$MAX_LOOP" in
        *[!0-9]*) msg "WARNING: max_loop=$MAX_LOOP is not a number: ignored"; MAX_LOOP= ;;
    esac
    case "$OVERLAY_SIZE" in
        *[!0-9A-Za-z%]*) msg "WARNING: rd.live.overlay.size=$OVERLAY_SIZE is not a size: using half of RAM"; OVERLAY_SIZE= ;;
    esac
}

load_modules() {
    local name flag opts out
    [ -f "$MODULES_LIST" ] || return 0
    while read -r name flag; do
        case "$name" in ''|'#'*) continue ;; esac
        opts=
        # max_loop= on the command line reaches a built-in loop driver only; a module gets it here
        [ "$name" = loop ] && [ -n "$MAX_LOOP" ] && opts="max_loop=$MAX_LOOP"
        if ! out=$(modprobe "$name" ${opts:+"$opts"} 2>&1); then
            # "optional" modules are alternatives (e.g. a CPU-specific crc32c) and "No such
            # device" means the hardware is not there (efivarfs without UEFI): quiet unless debug
            case "$flag:$out" in optional:*|*"No such device"*) [ -n "$DEBUG" ] || continue ;; esac
            msg "WARNING: modprobe $name failed: $out"
        fi
    done <"$MODULES_LIST"
}

conf() {
    sed -n "s/^$1=//p" "$CONF" 2>/dev/null
}

# The CPU must have every flag CPU_FLAGS names; otherwise one line and a shell, never switch_root.
check_cpu() {
    local need have missing flag
    need=$(conf CPU_FLAGS)
    [ -n "$need" ] || return 0
    have=" $(grep -m 1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    missing=
    for flag in $need; do
        case "$have" in *" $flag "*) ;; *) missing="$missing $flag" ;; esac
    done
    [ -z "$missing" ] && return 0
    error "LevitateOS needs an $(conf CPU_LEVEL) CPU ($(conf CPU_SUMMARY)); this CPU lacks:$missing"
    while :; do
        msg "emergency shell (this CPU cannot run the system: 'poweroff -f' or 'reboot -f')"
        shell
    done
}

# --- finding the medium ---------------------------------------------------------------------------

# The ISO 9660 primary volume descriptor is sector 16: "CD001" at byte 1, volume id at 40 (32
# bytes, space padded), creation date at 813 (blkid shows it as the UUID).
iso_label() {
    [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
    dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | sed 's/[[:space:]]*$//'
}

iso_uuid() {
    [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 1
    dd if="$1" bs=1 skip=33581 count=16 2>/dev/null \
        | sed 's/^\(....\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)$/\1-\2-\3-\4-\5-\6-\7/'
}

# Block devices that can carry the medium: CDs, disks, partitions (not loop or RAM disks).
block_devices() {
    local sys name
    for sys in /sys/class/block/*; do
        [ -e "$sys" ] || continue
        name=${sys##*/}
        case "$name" in loop*|ram*|zram*) continue ;; esac
        echo "$name"
    done
}

dev_size_mib() {
    local sectors
    sectors=$(cat "/sys/class/block/$1/size" 2>/dev/null)
    echo $(( ${sectors:-0} / 2048 ))
}

# Does /dev/$1 carry the wanted label or UUID?
matches() {
    local dev found
    dev=/dev/$1
    [ -b "$dev" ] || return 1
    [ "$(cat "/sys/class/block/$1/size" 2>/dev/null)" != 0 ] || return 1
    if [ "$WANT_KIND" = LABEL ]; then
        found=$(iso_label "$dev") && [ "$found" = "$WANT" ] && return 0
    else
        found=$(iso_uuid "$dev") && [ "$found" = "$WANT" ] && return 0
    fi
    # other filesystems (e.g. the ISO's files copied to a FAT stick) through blkid if there is one
    if command -v blkid >/dev/null 2>&1; then
        blkid "$dev" 2>/dev/null | grep -q " $WANT_KIND=\"$WANT\"" && return 0
    fi
    return 1
}

describe_device() {
    local name dev size part label info
    name=$1
    dev=/dev/$name
    size=$(dev_size_mib "$name")
    part=$(partuuid "$name") && part=" PARTUUID=$part"
    if [ "$size" = 0 ] || ! dd if="$dev" of=/dev/null bs=2048 count=1 2>/dev/null; then
        echo "$name: no medium (nothing readable)"
    elif label=$(iso_label "$dev"); then
        echo "$name: iso9660 LABEL=\"$label\" UUID=$(iso_uuid "$dev") ${size} MiB"
    elif command -v blkid >/dev/null 2>&1 && info=$(blkid "$dev" 2>/dev/null) && [ -n "$info" ]; then
        echo "$name: ${info#*: }$part ${size} MiB"
    elif info=$(fs_info "$dev"); then
        echo "$name: $info$part ${size} MiB"
    else
        echo "$name: no filesystem recognised$part, ${size} MiB"
    fi
}

# TYPE, LABEL and UUID of an ext2/3/4, xfs or FAT filesystem on $1, from its superblock (busybox
# builds of distributions may come without blkid).
fs_info() {
    local uuid serial label
    if [ "$(bytes_hex "$1" 1080 2)" = 53ef ]; then
        uuid=$(bytes_hex "$1" 1128 16 | sed 's/^\(........\)\(....\)\(....\)\(....\)/\1-\2-\3-\4-/')
        echo "TYPE=\"ext2/3/4\" LABEL=\"$(dd if="$1" bs=1 skip=1144 count=16 2>/dev/null | tr -d '\000')\" UUID=\"$uuid\""
    elif [ "$(dd if="$1" bs=1 count=4 2>/dev/null)" = XFSB ]; then
        uuid=$(bytes_hex "$1" 32 16 | sed 's/^\(........\)\(....\)\(....\)\(....\)/\1-\2-\3-\4-/')
        echo "TYPE=\"xfs\" LABEL=\"$(dd if="$1" bs=1 skip=108 count=12 2>/dev/null | tr -d '\000')\" UUID=\"$uuid\""
    elif [ "$(dd if="$1" bs=1 skip=82 count=5 2>/dev/null)" = FAT32 ]; then
        serial=$(le_hex "$(bytes_hex "$1" 67 4)" | tr a-f A-F)
        label=$(dd if="$1" bs=1 skip=71 count=11 2>/dev/null | sed 's/ *$//')
        echo "TYPE=\"vfat\" LABEL=\"$label\" UUID=\"${serial%????}-${serial#????}\""
    else
        return 1
    fi
}

# "0123abcd" -> "cdab2301" (little-endian bytes to the number's hex digits)
le_hex() {
    local h out
    h=$1 out=
    while [ -n "$h" ]; do
        out=${h%"${h#??}"}$out
        h=${h#??}
    done
    echo "$out"
}

# The PARTUUID of partition $1, as blkid and the kernel print it: the GPT entry's unique GUID, or
# on an MBR disk the disk signature and the partition number (1234abcd-02).
partuuid() {
    local n disk bs lba esize sig
    n=$(cat "/sys/class/block/$1/partition" 2>/dev/null) || return 1
    disk=$(readlink "/sys/class/block/$1") || return 1
    disk=${disk%/*}
    disk=${disk##*/}
    bs=$(cat "/sys/class/block/$disk/queue/logical_block_size" 2>/dev/null) || bs=512
    if [ "$(dd if="/dev/$disk" bs=1 skip="$bs" count=8 2>/dev/null)" = "EFI PART" ]; then
        lba=$(( 0x$(le_hex "$(bytes_hex "/dev/$disk" $((bs + 72)) 8)") ))
        esize=$(( 0x$(le_hex "$(bytes_hex "/dev/$disk" $((bs + 84)) 4)") ))
        # shellcheck disable=SC2046  # split on purpose: the GUID's five hex groups (no glob characters)
        set -- $(bytes_hex "/dev/$disk" $((lba * bs + (n - 1) * esize + 16)) 16 \
            | sed 's/^\(........\)\(....\)\(....\)\(....\)\(............\)$/\1 \2 \3 \4 \5/')
        [ $# = 5 ] || return 1
        echo "$(le_hex "$1")-$(le_hex "$2")-$(le_hex "$3")-$4-$5"
    else
        sig=$(bytes_hex "/dev/$disk" 440 4)
        [ -n "$sig" ] || return 1
        printf '%s-%02x\n' "$(le_hex "$sig")" "$n"
    fi
}

list_block_devices() {
    local any name
    msg "block devices found:"
    any=
    for name in $(block_devices); do
        any=1
        msg "  $(describe_device "$name")"
    done
    [ -n "$any" ] || msg "  (none: no disk or CD drive was detected; drivers loaded: $(cut -d' ' -f1 /proc/modules 2>/dev/null | tr '\n' ' '))"
}

find_medium() {
    local deadline name dev
    msg "waiting up to $TIMEOUT s for the medium $WANT_KIND=$WANT"
    deadline=$(( $(uptime_cs) + TIMEOUT * 100 ))
    while :; do
        for name in $(block_devices); do
            if matches "$name"; then
                MEDIUM_DEV=/dev/$name
                msg "found the medium $WANT_KIND=$WANT on $MEDIUM_DEV"
                return 0
            fi
        done
        if [ "$WANT_KIND" = LABEL ] && dev=$(findfs "LABEL=$WANT" 2>/dev/null) && [ -b "$dev" ]; then
            MEDIUM_DEV=$dev
            msg "found the medium $WANT_KIND=$WANT on $MEDIUM_DEV"
            return 0
        fi
        [ "$(uptime_cs)" -lt "$deadline" ] || break
        sleep 0.2 2>/dev/null || sleep 1
    done
    error "no medium with $WANT_KIND=$WANT found within $TIMEOUT s"
    list_block_devices
    return 1
}

# --- mounting ---------------------------------------------------------------------------------------

mount_medium() {
    local out
    if ! out=$(mount -t iso9660 -o ro "$MEDIUM_DEV" "$MEDIA" 2>&1) \
        && ! out=$(mount -t udf -o ro "$MEDIUM_DEV" "$MEDIA" 2>&1) \
        && ! out=$(mount -o ro "$MEDIUM_DEV" "$MEDIA" 2>&1); then
        error "cannot mount the medium $MEDIUM_DEV ($WANT_KIND=$WANT) at $MEDIA: $out"
        dmesg_tail
        return 1
    fi
    msg "mounted the medium $MEDIUM_DEV at $MEDIA"
}

# image_in DIR NAME: the path of DIR/NAME.erofs or DIR/NAME.squashfs (and its type)
image_in() {
    local fstype
    for fstype in erofs squashfs; do
        if [ -f "$1/$2.$fstype" ]; then
            echo "$fstype $1/$2.$fstype"
            return 0
        fi
    done
    return 1
}

bytes_hex() {  # bytes_hex FILE OFFSET COUNT -> "e2e1f5e0"
    dd if="$1" bs=1 skip="$2" count="$3" 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

# Does FILE start like an image of FSTYPE? (EROFS: 0xE0F5E1E2 at 1024; squashfs: "hsqs" at 0)
has_magic() {
    case "$1" in
        erofs) [ "$(bytes_hex "$2" 1024 4)" = e2e1f5e0 ] ;;
        squashfs) [ "$(bytes_hex "$2" 0 4)" = 68737173 ] ;;
        *) return 0 ;;
    esac
}

# mount_image WHAT FSTYPE FILE MOUNTPOINT
mount_image() {
    local out
    if ! out=$(mount -t "$2" -o ro "$3" "$4" 2>&1); then
        error "cannot mount the $1 ${3#"$MEDIA"/} ($2): $out"
        case "$2" in
            erofs) grep -qw erofs /proc/filesystems || msg "  the kernel has no erofs support loaded (modprobe erofs failed?)" ;;
            squashfs) grep -qw squashfs /proc/filesystems || msg "  the kernel has no squashfs support loaded (modprobe squashfs failed?)" ;;
        esac
        [ -e /dev/loop-control ] || msg "  no /dev/loop-control: the kernel has no loop support loaded (modprobe loop failed?)"
        if ! has_magic "$2" "$3"; then
            msg "  ${3#"$MEDIA"/} has no $2 superblock: the image is corrupted or not $2"
        fi
        msg "  check the medium (compare the ISO's sha512sum) and write it again"
        dmesg_tail
        return 1
    fi
    msg "mounted the $1 ${3#"$MEDIA"/} ($2)"
}

mount_live_root() {
    local dir base lower live out
    mkdir -p "$MEDIA" "$BASE_MNT" "$LIVE_MNT" "$OVERLAY_MNT"
    find_medium || return 1
    mount_medium || return 1
    dir=$MEDIA/$LIVE_DIR
    if ! base=$(image_in "$dir" filesystem); then
        error "no base image ($LIVE_DIR/filesystem.erofs or $LIVE_DIR/filesystem.squashfs) on the medium $MEDIUM_DEV"
        if [ -d "$dir" ]; then
            msg "files in $dir:"
            detail ls -la "$dir"
        else
            msg "no directory $LIVE_DIR on the medium; files in $MEDIA:"
            detail ls -la "$MEDIA"
        fi
        return 1
    fi
    mount_image "base image" "${base%% *}" "${base#* }" "$BASE_MNT" || return 1
    lower=$BASE_MNT
    if live=$(image_in "$dir" live); then
        mount_image "live layer" "${live%% *}" "${live#* }" "$LIVE_MNT" || return 1
        lower=$LIVE_MNT:$BASE_MNT
    else
        msg "WARNING: no live layer ($LIVE_DIR/live.erofs) on the medium: booting the base image alone"
    fi
    if ! out=$(mount -t tmpfs -o "mode=0755${OVERLAY_SIZE:+,size=$OVERLAY_SIZE}" levitate-overlay "$OVERLAY_MNT" 2>&1); then
        error "cannot mount the tmpfs for the overlay's upper layer${OVERLAY_SIZE:+ (rd.live.overlay.size=$OVERLAY_SIZE)}: $out"
        return 1
    fi
    mkdir -p "$OVERLAY_MNT/upper" "$OVERLAY_MNT/work"
    if ! out=$(mount -t overlay -o "lowerdir=$lower,upperdir=$OVERLAY_MNT/upper,workdir=$OVERLAY_MNT/work" \
            overlay "$NEWROOT" 2>&1); then
        error "cannot mount the root overlay at $NEWROOT: $out"
        grep -qw overlay /proc/filesystems || msg "  the kernel has no overlay support loaded (modprobe overlay failed?)"
        dmesg_tail
        return 1
    fi
    msg "root overlay mounted at $NEWROOT (lower $lower, upper tmpfs${OVERLAY_SIZE:+ size=$OVERLAY_SIZE})"
    if ! find_init >/dev/null; then
        error "no init in the root image (${NEWINIT:+$NEWINIT, }/sbin/init, /usr/lib/systemd/systemd)"
        detail ls -la "$NEWROOT" "$NEWROOT/sbin/"
        return 1
    fi
}

# --- an installed system's root ----------------------------------------------------------------------

# The device ROOT_SPEC names, if it is there yet.
resolve_root() {
    local dev want name
    case "$ROOT_SPEC" in
        UUID=*|LABEL=*)
            dev=$(findfs "$ROOT_SPEC" 2>/dev/null) && [ -b "$dev" ] && echo "$dev" ;;
        PARTUUID=*)
            want=$(echo "${ROOT_SPEC#PARTUUID=}" | tr A-F a-f)
            for name in $(block_devices); do
                if [ "$(partuuid "$name")" = "$want" ] && [ -b "/dev/$name" ]; then
                    echo "/dev/$name"
                    return 0
                fi
            done
            return 1 ;;
        *)
            [ -b "$ROOT_SPEC" ] && echo "$ROOT_SPEC" ;;
    esac
}

mount_disk_root() {
    local deadline opts out
    msg "waiting up to $TIMEOUT s for the root $ROOT_SPEC"
    deadline=$(( $(uptime_cs) + TIMEOUT * 100 ))
    until ROOT_DEV=$(resolve_root); do
        if [ "$(uptime_cs)" -ge "$deadline" ]; then
            error "no root device $ROOT_SPEC found within $TIMEOUT s"
            list_block_devices
            return 1
        fi
        sleep 0.2 2>/dev/null || sleep 1
    done
    opts=$ROOT_MODE${ROOTFLAGS:+,$ROOTFLAGS}
    if ! out=$(mount ${ROOTFSTYPE:+-t "$ROOTFSTYPE"} -o "$opts" "$ROOT_DEV" "$NEWROOT" 2>&1); then
        error "cannot mount the root $ROOT_DEV ($ROOT_SPEC${ROOTFSTYPE:+, type $ROOTFSTYPE}) at $NEWROOT: $out"
        msg "  $(describe_device "${ROOT_DEV#/dev/}")"
        msg "  filesystems the kernel can mount: $(grep -v nodev /proc/filesystems | tr -d '\t' | tr '\n' ' ')"
        dmesg_tail
        return 1
    fi
    msg "mounted the root $ROOT_DEV ($ROOT_SPEC) at $NEWROOT ($opts)"
    if ! find_init >/dev/null; then
        error "no init on the root $ROOT_DEV (${NEWINIT:+$NEWINIT, }/sbin/init, /usr/lib/systemd/systemd)"
        detail ls -la "$NEWROOT"
        return 1
    fi
}

# --- main ---------------------------------------------------------------------------------------------

setup
parse_cmdline
if [ -n "$DEBUG" ]; then
    dmesg -n 7 2>/dev/null
    set -x
else
    dmesg -n 1 2>/dev/null
fi
msg "starting (kernel $(uname -r))"
check_cpu
load_modules
case "$MODE" in
    live) mount_live_root || emergency ;;
    disk) mount_disk_root || emergency ;;
    *)
        error "root=$ROOT_SPEC is not a root this initramfs understands"
        msg "  use root=live:LABEL=NAME (live medium) or root=UUID=..., LABEL=..., PARTUUID=..., /dev/NAME"
        emergency ;;
esac

if [ -n "$BREAK" ]; then
    msg "rd.break: dropping to a shell"
    msg "  (the new root is mounted at $NEWROOT; exit the shell to continue booting)"
    shell
    msg "rd.break: shell exited, continuing the boot"
    root_ready || { error "no root mounted at $NEWROOT with an init"; emergency; }
fi

INIT=$(find_init)
# /run goes first: it holds the medium and the layers, and systemd keeps a /run that is already a
# mount point, so the medium stays visible at /run/levitate/media.
for dir in /run /dev /proc /sys; do
    mkdir -p "$NEWROOT$dir" 2>/dev/null
    if ! out=$(mount --move "$dir" "$NEWROOT$dir" 2>&1); then
        error "cannot move $dir into $NEWROOT: $out"
        emergency
    fi
done
msg "switch_root"
# Nothing after this could run: busybox sh exits when exec fails (even `command exec`), and
# switch_root is an applet build_initramfs requires.
exec switch_root "$NEWROOT" "$INIT"
