#!/bin/bash
# Owns the arm64 proof: a Debian 12 arm64 root (mmdebstrap), Doorward installed into it by
# install.sh --root, and a grant and a denial decided on an emulated Cortex-A72 (qemu-user).
set -euo pipefail
{ # the whole script is read before it runs: editing it meanwhile cannot change a running install

usage() {
    cat <<'USAGE'
Usage: sudo provisioning/pi-check.sh [--work DIR] [--fresh-root] [--keep]

Builds (or reuses) an arm64 Debian 12 root with mmdebstrap, installs Doorward into a fresh copy of
it with provisioning/install.sh --root, then, emulated with qemu-user-static:
  - QEMU_CPU=cortex-a72, default config (liveness on): enrolls a frame of a real clip, and
    `doorward simulate` grants that person on the clip, refuses a still frame of them for
    liveness, and denies another person's photo; `doorward verify` times one face check;
  - QEMU_CPU=cortex-a72 and cortex-a76: every compiled module of the venv imports;
  - every .so in the venv has 64 KiB-aligned LOAD segments (the Pi 5 kernel's 16 KiB pages).
Timings go to WORK/timings.json. Exit 0 only if every check passed.

  --work DIR     work folder (default /var/tmp/doorward-pi-check); the base root is cached there
  --fresh-root   rebuild the cached base root (mmdebstrap, ~6 min) even if it exists
  --keep         keep the installed root afterwards (WORK/root) for a look inside
USAGE
}

WORK=/var/tmp/doorward-pi-check
FRESH=0
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK=${2%/}; shift 2 ;;
        --fresh-root) FRESH=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; echo "pi-check: error: unknown option $1" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(dirname "$here")
say() { echo "pi-check: $*"; }
die() { echo "pi-check: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap, chroot and binfmt_misc need it)"

declare -A T=()   # step -> seconds
t_all=$(date +%s)
step_start=0
begin() { step_start=$(date +%s.%N); say "$*"; }
end() { T[$1]=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$step_start" "$(date +%s.%N)"); }

# ---- tools: Debian's mmdebstrap, arch-test and qemu-user-static ---------------------------
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
# mmdebstrap checks a foreign architecture with arch-test (a Recommends, so not pulled in)
command -v arch-test >/dev/null || need+=(arch-test)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
QEMU=$(command -v qemu-aarch64-static)

# ---- binfmt_misc: aarch64 ELF files run through the static qemu (F: opened now, so it works
# inside the chroot without a copy there) -----------------------------------------------------
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/register" ]; then
    mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc at $BINFMT"
fi
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    say "registering $QEMU for aarch64 ELF binaries"
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
    echo ":qemu-aarch64:M::$magic:$mask:$QEMU:F" >"$BINFMT/register" \
        || die "cannot register qemu-aarch64 in binfmt_misc"
fi
grep -q '^enabled' "$BINFMT/qemu-aarch64" || die "binfmt qemu-aarch64 is registered but disabled"
grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" \
    || say "warning: qemu-aarch64 is registered without the F flag; copying $QEMU into the root"

mkdir -p "$WORK"
BASE=$WORK/bookworm-arm64   # the cached base root (a directory)
ROOT=$WORK/root
LOG=$WORK/install.log

# ---- 1. the base root: Debian 12 arm64, the apt packages install.sh would add that Debian has
# (python3-picamera2 and python3-lgpio come from the Raspberry Pi archive, not Debian) ---------
if [ "$FRESH" -eq 1 ] || [ ! -x "$BASE/usr/bin/python3" ]; then
    begin "building the arm64 Debian 12 root with mmdebstrap (several minutes)"
    rm -rf --one-file-system "$BASE.new" "$BASE"
    mmdebstrap --quiet --arch=arm64 --variant=apt \
        --include=python3,python3-venv,python3-pip,ca-certificates,openssl,nginx-light,passwd,util-linux \
        bookworm "$BASE.new" || die "mmdebstrap failed"
    mv "$BASE.new" "$BASE"
    end mmdebstrap
else
    say "reusing the base root $BASE (--fresh-root rebuilds it)"
fi
T[base_root_mb]=$(du -sm "$BASE" | cut -f1)

# ---- 2. a fresh copy, with this machine's CAs, pip settings and resolver --------------------
mounted=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m=${mounted[$i]}
        umount -l "$m" 2>/dev/null || true
    done
    if [ "$KEEP" -eq 0 ] && [ -d "$ROOT" ]; then rm -rf --one-file-system "$ROOT"; fi
}
trap cleanup EXIT
for fs in proc sys dev; do  # a run that was killed may have left its mounts
    if mountpoint -q "$ROOT/$fs" 2>/dev/null; then umount -l "$ROOT/$fs"; fi
done
if [ -d "$ROOT" ]; then rm -rf --one-file-system "$ROOT"; fi
cp -a "$BASE" "$ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# certificate authorities: pip inside must trust what this machine trusts
cat /etc/ssl/certs/ca-certificates.crt >"$ROOT/etc/ssl/certs/ca-certificates.crt"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
[ -d /etc/xdg/pip ] && mkdir -p "$ROOT/etc/xdg" && cp -r /etc/xdg/pip "$ROOT/etc/xdg/"
grep -q '^flags:.*F' "$BINFMT/qemu-aarch64" || cp "$QEMU" "$ROOT/usr/bin/"
for fs in proc sys dev; do
    mkdir -p "$ROOT/$fs"
    case $fs in
        proc) mount -t proc proc "$ROOT/proc" ;;
        sys) mount --rbind /sys "$ROOT/sys" ;;
        dev) mount --rbind /dev "$ROOT/dev" ;;
    esac
    mounted+=("$ROOT/$fs")
done
# the pip/requests settings of this machine's environment, carried into the chroot
pip_env=()
# (not PIP_FIND_LINKS: a folder of this machine that the root does not have)
while IFS= read -r var; do pip_env+=("$var"); done < <(env | grep -E '^(PIP_[A-Z_]+|SSL_CERT_FILE|REQUESTS_CA_BUNDLE|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' | grep -v '^PIP_FIND_LINKS=' || true)

clean_env() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "${pip_env[@]}" "$@"; }

# ---- 3. install.sh --root: what a chroot cannot do is skipped and said -----------------------
PICHECK_CONFIG=$WORK/doorward.toml
sed -e 's|^pin_factory = .*|pin_factory = "mock"                # pi-check: no GPIO in a chroot|' \
    -e 's|^kind = "picamera2".*|kind = "replay"                     # pi-check: no Pi camera in a chroot|' \
    "$SRC/provisioning/doorward.toml.example" >"$PICHECK_CONFIG"
say "skipped in the emulated root: the apt step (python3-picamera2 and python3-lgpio are in the"
say "  Raspberry Pi archive, not Debian; the root already has Debian's python3, venv, pip, nginx),"
say "  systemctl (no service manager in a chroot); the config uses mock pins and the replay camera"
begin "install.sh --root $ROOT (pip under emulation: several minutes; log $LOG)"
if ! clean_env QEMU_CPU=cortex-a72 bash "$SRC/provisioning/install.sh" --root "$ROOT" --src "$SRC" \
    --no-apt --no-systemd --device-id pi-check --config "$PICHECK_CONFIG" >"$LOG" 2>&1; then
    tail -30 "$LOG" >&2
    die "install.sh --root failed (log $LOG)"
fi
end install
grep '^install.sh:' "$LOG" || true
T[venv_mb]=$(du -sm "$ROOT/opt/doorward/venv" | cut -f1)

# ---- 4. decide on a Cortex-A72: enroll one photo, grant the same person, deny another ---------
FACES=$SRC/tests/fixtures/faces/people
mkdir -p "$ROOT/var/tmp/pi-check"
cp "$FACES/kit_harington/kit1.jpg" "$FACES/kit_harington/kit2.jpg" "$FACES/obama/obama1.jpg" \
    "$ROOT/var/tmp/pi-check/"
# The embedded default, but for the face check's time window: emulation runs the door some
# 10-50x slower than a Pi (first frames slowest, while qemu translates the code), and the
# default 3 s window closed after one frame of the clip. Frames and decisions are the door's.
cat >"$ROOT/var/tmp/pi-check/emulated.toml" <<'TOML'
[vision]
window_s = 300.0    # the door's default is 3 s; under qemu-user one frame took 5.6 s
TOML
door() { # door CPU ARGS...: the installed doorward in the root, in /var/tmp/pi-check
    local cpu=$1
    shift
    clean_env QEMU_CPU="$cpu" DOORWARD_PEPPER=pi-check-pepper-not-a-secret \
        chroot "$ROOT" /bin/sh -c 'cd /var/tmp/pi-check && exec /opt/doorward/venv/bin/doorward "$@"' \
        doorward --config /var/tmp/pi-check/emulated.toml --db sqlite:////var/tmp/pi-check/door.db "$@"
}
begin "cortex-a72: enroll user 1 (kit1.jpg)"
door cortex-a72 enroll --number 1 --name "Kit Harington" --pin 2468 --photo /var/tmp/pi-check/kit1.jpg \
    >"$WORK/enroll.out" 2>&1 || { cat "$WORK/enroll.out" >&2; die "enroll failed on cortex-a72"; }
end enroll_a72
summary() { grep '"event": "summary"' "$1" | tail -1; }
# the default config has liveness on: the grant is the user's real clip (tests/fixtures/clips,
# MIT), enrolled from its first frame; a still frame of the same clip must be refused
cp "$SRC/tests/fixtures/clips/driving_d19.mp4" "$ROOT/var/tmp/pi-check/clip.mp4"
clean_env QEMU_CPU=cortex-a72 chroot "$ROOT" /opt/doorward/venv/bin/python -c '
import cv2
cap = cv2.VideoCapture("/var/tmp/pi-check/clip.mp4")
step = max(1, round((cap.get(cv2.CAP_PROP_FPS) or 30.0) / 10.0))  # the door camera: 10 fps
frames, i = [], 0
while len(frames) <= 20:
    ok, bgr = cap.read()
    if not ok:
        break
    if i % step == 0:
        frames.append(bgr)
    i += 1
assert len(frames) > 20, "clip too short"
cv2.imwrite("/var/tmp/pi-check/nia_enroll.png", frames[0])
cv2.imwrite("/var/tmp/pi-check/nia_still.png", frames[20])
' >"$WORK/frames.out" 2>&1 || { cat "$WORK/frames.out" >&2; die "could not take frames of the clip"; }
begin "cortex-a72: enroll user 5 (the clip's first frame)"
door cortex-a72 enroll --number 5 --name "Nia" --pin 4826 --photo /var/tmp/pi-check/nia_enroll.png \
    >"$WORK/enroll5.out" 2>&1 || { cat "$WORK/enroll5.out" >&2; die "enroll (clip) failed on cortex-a72"; }
end enroll_clip_a72
# visit NAME KEYS CAMERA GRANTED EVENT: one simulated visit on cortex-a72 (output WORK/NAME.out,
# timed as simulate_NAME_a72) that must end granted or not (true|false) with an EVENT record
visit() {
    local name=$1 keys=$2 camera=$3 granted=$4 event=$5
    local out="$WORK/$name.out"
    begin "cortex-a72: simulate $keys with $camera (must end granted=$granted, $event)"
    door cortex-a72 simulate --keys "$keys" --camera "$camera" >"$out" 2>&1 \
        || { cat "$out" >&2; die "simulate ($name) failed"; }
    end "simulate_${name}_a72"
    summary "$out" | grep -q "\"granted\": $granted" \
        || { cat "$out" >&2; die "$camera: the visit did not end granted=$granted"; }
    grep -q "\"event\": \"$event\"" "$out" || die "$camera: no $event record (see $out)"
}
visit grant '5*4826#' /var/tmp/pi-check/clip.mp4 true granted          # the user's real clip
visit still '5*4826#' /var/tmp/pi-check/nia_still.png false denied_liveness  # a photo of them
visit deny '1*2468#' /var/tmp/pi-check/obama1.jpg false denied_face     # another person
for who in kit2 obama1; do  # exit 1 is a denial: the JSON line says which
    door cortex-a72 verify --number 1 --image "/var/tmp/pi-check/$who.jpg" >"$WORK/verify_$who.out" 2>&1 || true
    tail -1 "$WORK/verify_$who.out" | grep -q '"decision"' \
        || { cat "$WORK/verify_$who.out" >&2; die "verify $who printed no decision"; }
done
grep -q '"decision": "granted"' "$WORK/verify_kit2.out" || die "verify: kit2.jpg not granted"
grep -q '"decision": "denied"' "$WORK/verify_obama1.out" || die "verify: obama1.jpg not denied"
say "verify kit2:   $(tail -1 "$WORK/verify_kit2.out")"
say "verify obama1: $(tail -1 "$WORK/verify_obama1.out")"
cp "$here/pi_check_so.py" "$ROOT/var/tmp/pi-check/"
begin "cortex-a72: one face check, timed 4 times in one process"
clean_env QEMU_CPU=cortex-a72 chroot "$ROOT" /opt/doorward/venv/bin/python /var/tmp/pi-check/pi_check_so.py \
    face-timing /var/tmp/pi-check/kit1.jpg /var/tmp/pi-check/kit2.jpg 4 >"$WORK/face_timing.out" 2>&1 \
    || { cat "$WORK/face_timing.out" >&2; die "face timing failed"; }
end face_timing_step
say "face check on cortex-a72: $(tail -1 "$WORK/face_timing.out")"
# the same check natively, in the same run (same machine, same load): the ratio is the figure
if [ -x "$SRC/.venv/bin/python" ]; then
    "$SRC/.venv/bin/python" "$here/pi_check_so.py" face-timing "$FACES/kit_harington/kit1.jpg" \
        "$FACES/kit_harington/kit2.jpg" 4 >"$WORK/face_timing_native.out" 2>&1 \
        || { cat "$WORK/face_timing_native.out" >&2; die "native face timing failed"; }
    say "face check natively ($(uname -m)): $(tail -1 "$WORK/face_timing_native.out")"
else
    echo '{"skipped": "no .venv in the repository"}' >"$WORK/face_timing_native.out"
fi

# ---- 5. every compiled module imports on both CPU models; every .so 64 KiB-aligned -----------
for cpu in cortex-a72 cortex-a76; do
    begin "$cpu: importing every compiled module of the venv"
    clean_env QEMU_CPU="$cpu" chroot "$ROOT" /opt/doorward/venv/bin/python \
        /var/tmp/pi-check/pi_check_so.py imports /opt/doorward/venv >"$WORK/imports_$cpu.out" 2>&1 \
        || { tail -20 "$WORK/imports_$cpu.out" >&2; die "a compiled module does not import on $cpu"; }
    end "imports_$cpu"
    tail -1 "$WORK/imports_$cpu.out"
done
python3 "$here/pi_check_so.py" align "$ROOT/opt/doorward/venv" >"$WORK/align.out" 2>&1 \
    || { tail -20 "$WORK/align.out" >&2; die "a .so is not 64 KiB-aligned"; }
tail -1 "$WORK/align.out"

# ---- timings ------------------------------------------------------------------------------
T[total_s]=$(( $(date +%s) - t_all ))
{
    echo "{"
    first=1
    for k in "${!T[@]}"; do
        [ $first -eq 1 ] || echo ","
        first=0
        printf '  "%s": %s' "$k" "${T[$k]}"
    done
    printf ',\n  "verify_kit2": %s,\n  "verify_obama1": %s,\n  "face_check_a72": %s,\n  "face_check_native": %s\n}\n' \
        "$(tail -1 "$WORK/verify_kit2.out")" "$(tail -1 "$WORK/verify_obama1.out")" \
        "$(tail -1 "$WORK/face_timing.out")" "$(tail -1 "$WORK/face_timing_native.out")"
} >"$WORK/timings.json"
cat "$WORK/timings.json"
say "OK: installed; on an emulated Cortex-A72 granted the real clip, refused its still frame for liveness, denied obama1.jpg; modules import on A72 and A76; .so files 64 KiB-aligned"
exit
}
