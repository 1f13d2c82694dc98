#!/bin/bash
# Owns installing one Doorward door on Raspberry Pi OS Bookworm (64-bit). Safe to run again:
# code and units are refreshed; existing config, secrets, certificate and data are kept.
set -euo pipefail
{ # the whole script is read before it runs: editing it meanwhile cannot change a running install

usage() {
    cat <<'USAGE'
Usage: sudo provisioning/install.sh [options]

  --device-id ID      this door's id (default: the host name)      [first install only]
  --door-name NAME    this door's name (default: "Front door")     [first install only]
  --database-url URL  central MySQL URL, e.g. mysql+pymysql://door_x@db:3306/doorward
  --config FILE       use FILE as /etc/doorward/doorward.toml instead of the template
  --tls-cert FILE --tls-key FILE   use this certificate for the admin page (else self-signed)
  --pepper-file FILE  install this pepper (a fleet shares one) instead of generating one
  --root DIR          install into DIR instead of / : a throwaway root for tests, or a whole
                      OS root (has usr/bin/python3, e.g. built by mmdebstrap): then the user,
                      venv, pip, import check and migrate run inside it with chroot, and only
                      systemctl (no service manager there) is skipped, said so
  --prefix DIR        code and venv location (default /opt/doorward)
  --src DIR           the repository to install (default: this script's repository)
  --no-apt            do not install apt packages
  --no-users          do not create the doorward user / set owners (files stay with the caller)
  --no-venv           do not create the venv nor install the app (nor migrate)
  --no-systemd        write the unit but do not call systemctl
  --no-nginx          do not write the nginx site (no HTTPS front for the admin page)
  -h, --help
USAGE
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(dirname "$here")
ROOT=""
PREFIX=/opt/doorward
DEVICE_ID=""
DOOR_NAME="Front door"
DATABASE_URL=""
CONFIG_SRC=""
TLS_CERT_SRC=""
TLS_KEY_SRC=""
PEPPER_SRC=""
DO_APT=1 DO_USERS=1 DO_VENV=1 DO_SYSTEMD=1 DO_NGINX=1
SERVICE_USER=doorward
APT_PACKAGES=(python3-venv python3-pip python3-picamera2 python3-lgpio
    nginx-light openssl ca-certificates)
PIP_ARGS=${DOORWARD_PIP_ARGS:-}

while [ $# -gt 0 ]; do
    case "$1" in
        --device-id) DEVICE_ID=$2; shift 2 ;;
        --door-name) DOOR_NAME=$2; shift 2 ;;
        --database-url) DATABASE_URL=$2; shift 2 ;;
        --config) CONFIG_SRC=$2; shift 2 ;;
        --tls-cert) TLS_CERT_SRC=$2; shift 2 ;;
        --tls-key) TLS_KEY_SRC=$2; shift 2 ;;
        --pepper-file) PEPPER_SRC=$2; shift 2 ;;
        --root) ROOT=${2%/}; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --src) SRC=$2; shift 2 ;;
        --no-apt) DO_APT=0; shift ;;
        --no-users) DO_USERS=0; shift ;;
        --no-venv) DO_VENV=0; shift ;;
        --no-systemd) DO_SYSTEMD=0; shift ;;
        --no-nginx) DO_NGINX=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

[ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ] && die "run as root (sudo), or give --root DIR"
[ -f "$SRC/pyproject.toml" ] || die "--src $SRC is not the Doorward repository (no pyproject.toml)"
[ -n "$DEVICE_ID" ] || DEVICE_ID=$(hostname 2>/dev/null || echo door-1)
[[ "$DEVICE_ID" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] \
    || die "--device-id '$DEVICE_ID': use 1-64 of A-Z a-z 0-9 _ . -"
case "$DOOR_NAME" in
    '' | *'"'* | *\\* | *'|'* | *'&'* | *$'\n'*)
        die "--door-name '$DOOR_NAME': give a non-empty name without \" \\ | & or newlines" ;;
esac
[ -z "$TLS_CERT_SRC" ] || [ -n "$TLS_KEY_SRC" ] || die "--tls-cert needs --tls-key"
[ -z "$CONFIG_SRC" ] || [ -r "$CONFIG_SRC" ] || die "cannot read --config $CONFIG_SRC"
[ -z "$PEPPER_SRC" ] || [ -s "$PEPPER_SRC" ] || die "--pepper-file $PEPPER_SRC is empty or missing"

ETC=$ROOT/etc/doorward
SECRETS=$ETC/secrets
TLS=$ETC/tls
DATA=$ROOT/var/lib/doorward
VENV=$ROOT$PREFIX/venv
CONFIG=$ETC/doorward.toml
UNIT_DIR=$ROOT/etc/systemd/system
NGINX=$ROOT/etc/nginx

# An OS root (--root DIR with its own Python): commands that must be the target's run in it.
OS_ROOT=0
if [ -n "$ROOT" ] && [ -x "$ROOT/usr/bin/python3" ] && [ -x "$ROOT/bin/sh" ]; then
    OS_ROOT=1
fi
if [ -n "$ROOT" ] && [ "$OS_ROOT" -eq 0 ] && { [ "$DO_VENV" -eq 1 ] || [ "$DO_USERS" -eq 1 ]; }; then
    die "--root $ROOT holds no OS (no usr/bin/python3): give --no-venv --no-users, or an OS root (provisioning/pi-check.sh builds one)"
fi
# target CMD...: run CMD on the target (inside the OS root with chroot, else here)
target() {
    if [ "$OS_ROOT" -eq 1 ]; then chroot "$ROOT" "$@"; else "$@"; fi
}
# owner USER[:GROUP] PATH... : chown only when we manage users (a test root keeps the caller's)
owner() {
    [ "$DO_USERS" -eq 1 ] || return 0
    if [ "$OS_ROOT" -eq 1 ]; then
        local who=$1 p
        shift
        for p in "$@"; do chroot "$ROOT" chown "$who" "${p#"$ROOT"}"; done
    else
        chown "$@"
    fi
}

# ---- 1. apt packages -------------------------------------------------------------------
if [ "$DO_APT" -eq 1 ]; then
    say "installing apt packages: ${APT_PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    target apt-get update -q
    target apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
fi

# ---- 2. system user --------------------------------------------------------------------
if [ "$DO_USERS" -eq 1 ]; then
    if ! target getent passwd "$SERVICE_USER" >/dev/null; then
        say "creating system user $SERVICE_USER"
        target useradd --system --user-group --home-dir /var/lib/doorward --no-create-home \
            --shell /usr/sbin/nologin --comment "Doorward door appliance" "$SERVICE_USER"
    fi
    for group in gpio video dialout; do
        if target getent group "$group" >/dev/null; then
            target usermod -a -G "$group" "$SERVICE_USER"
        else
            say "warning: group $group does not exist (not a Raspberry Pi OS image?)"
        fi
    done
fi

# ---- 3. directories --------------------------------------------------------------------
install -d -m 0755 "$ROOT$PREFIX"
install -d -m 0750 "$ETC"
install -d -m 0700 "$DATA"  # database, snapshots, enrollment photos, mailbox: owner only
install -d -m 0700 "$SECRETS"
install -d -m 0755 "$TLS"
owner "root:$SERVICE_USER" "$ETC"
owner "$SERVICE_USER:$SERVICE_USER" "$SECRETS" "$DATA"

# ---- 4. secrets (never overwritten) ----------------------------------------------------
new_secret() { # new_secret NAME [SOURCE]: create $SECRETS/NAME (0600) unless it exists
    local path=$SECRETS/$1
    if [ -s "$path" ]; then
        say "keeping secret $path"
    else
        (
            umask 077
            if [ -n "${2:-}" ]; then
                cat "$2" >"$path.new"
            else
                openssl rand -hex 32 >"$path.new"
            fi
        )
        mv "$path.new" "$path"
        say "created secret $path"
    fi
    chmod 0600 "$path"
    owner "$SERVICE_USER:$SERVICE_USER" "$path"
}
new_secret pepper "$PEPPER_SRC"
new_secret admin_secret_key

# ---- 5. config (never overwritten) -----------------------------------------------------
if [ -e "$CONFIG" ]; then
    say "keeping config $CONFIG"
else
    tmp=$(mktemp "$ETC/.doorward.toml.XXXXXX")
    if [ -n "$CONFIG_SRC" ]; then
        cat "$CONFIG_SRC" >"$tmp"
    else
        sed -e "s|^id = \"door-1\" |id = \"$DEVICE_ID\" |" \
            -e "s|^name = \"Front door\" |name = \"$DOOR_NAME\" |" \
            "$SRC/provisioning/doorward.toml.example" >"$tmp"
        if [ -n "$DATABASE_URL" ]; then
            sed -i -e "s|^# url = \"mysql+pymysql://.*|url = \"$DATABASE_URL\"|" \
                -e "s|^# password = { file = \"/etc/doorward/secrets/db_password\" }|password = { file = \"/etc/doorward/secrets/db_password\" }|" \
                "$tmp"
        fi
    fi
    chmod 0640 "$tmp"
    owner "root:$SERVICE_USER" "$tmp"
    mv "$tmp" "$CONFIG"
    say "wrote config $CONFIG (device $DEVICE_ID)"
fi
chmod 0640 "$CONFIG"

# ---- 6. TLS certificate for the admin page (never overwritten) --------------------------
if [ -n "$TLS_CERT_SRC" ]; then
    sh "$SRC/provisioning/make-cert.sh" --out "$TLS" --cert "$TLS_CERT_SRC" --key "$TLS_KEY_SRC"
else
    sh "$SRC/provisioning/make-cert.sh" --out "$TLS" --cn "$DEVICE_ID"
fi

# ---- 7. venv and the app ---------------------------------------------------------------
if [ "$DO_VENV" -eq 1 ]; then
    TSRC=$SRC           # the source and the venv as the target sees them
    TVENV=$PREFIX/venv
    [ -n "$ROOT" ] || TVENV=$VENV
    if [ "$OS_ROOT" -eq 1 ]; then
        # the target's pip builds from a copy inside the root (no .venv, var or .git of ours)
        TSRC=$PREFIX/src
        say "copying $SRC to $ROOT$TSRC"
        rm -rf "$ROOT$TSRC.new"
        install -d -m 0755 "$ROOT$TSRC.new"
        tar -C "$SRC" --exclude=./.venv --exclude=./var --exclude=./.git \
            --exclude='*/__pycache__' --exclude=./.pytest_cache --exclude=./.mypy_cache \
            --exclude=./.ruff_cache -cf - . | tar -C "$ROOT$TSRC.new" -xf -
        rm -rf "$ROOT$TSRC"
        mv "$ROOT$TSRC.new" "$ROOT$TSRC"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating venv $VENV (with system site packages, for picamera2 and lgpio)"
        target python3 -m venv --system-site-packages "$TVENV"
    fi
    say "installing Doorward from $SRC into $VENV"
    # the versions tested together (constraints.txt), not whatever is newest on install day;
    # --ignore-installed: the venv gets its own copy of every dependency, so a numpy-built
    # package from apt (python3-simplejpeg, built against Debian's numpy 1.x) never shadows the
    # venv's (numpy 2.x); picamera2 itself, not a dependency, still comes from the system
    # shellcheck disable=SC2086  # PIP_ARGS is a list of words on purpose
    target "$TVENV/bin/pip" install --quiet --ignore-installed $PIP_ARGS \
        -c "$TSRC/constraints.txt" "$TSRC"
    TCONFIG=${CONFIG#"$ROOT"}   # the config as the target sees it
    target "$TVENV/bin/python" -c "import sys; from appliance.config import load_config; load_config(sys.argv[1])" "$TCONFIG" \
        || die "$CONFIG does not validate (see above); fix it and run install.sh again"
    # the whole door stack, loaded and run once (camera adapters, snapshots, numpy, cv2, dlib
    # and its models; picamera2 and lgpio when the config uses them): a broken install fails
    # here, loudly, not at the first visitor
    say "checking the door stack imports and runs (doorward doctor --only stack)"
    target "$TVENV/bin/doorward" --config "$TCONFIG" doctor --only stack \
        || die "the door stack does not load in $VENV (see the line above); nothing was started"
fi

# ---- 8. systemd units: the door, and the admin page in a process of its own -------------
install -d -m 0755 "$UNIT_DIR"
for unit in doorward.service doorward-admin.service; do
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@CONFIG@|/etc/doorward/doorward.toml|g" \
        "$SRC/provisioning/systemd/$unit" >"$UNIT_DIR/$unit.new"
    chmod 0644 "$UNIT_DIR/$unit.new"
    mv "$UNIT_DIR/$unit.new" "$UNIT_DIR/$unit"
done

# ---- 9. nginx: HTTPS in front of the admin page, HTTP redirected ------------------------
# nginx refuses a request body longer than the admin page would take: admin.max_upload_mb
# (default 10) plus 64 KiB of form fields, in KiB, as web_admin.serving.max_body_bytes does
# for waitress. Read from the config each run: after changing max_upload_mb, run this again.
max_body_kib() {
    awk '
        /^[[:space:]]*\[/ { sect = $0; sub(/#.*/, "", sect); gsub(/[[:space:]]/, "", sect); next }
        sect == "[admin]" && /^[[:space:]]*max_upload_mb[[:space:]]*=/ {
            v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*(#.*)?$/, "", v); mb = v
        }
        END {
            if (mb == "") mb = "10"
            if (mb !~ /^[0-9]+(\.[0-9]+)?$/) { print "bad " mb; exit 1 }
            k = mb * 1024; kib = int(k); if (kib < k) kib++
            printf "%dk\n", kib + 64
        }' "$1"
}
if [ "$DO_NGINX" -eq 1 ]; then
    MAX_BODY=$(max_body_kib "$CONFIG") \
        || die "admin.max_upload_mb in $CONFIG is not a plain number (${MAX_BODY#bad })"
    install -d -m 0755 "$NGINX/sites-available" "$NGINX/sites-enabled"
    sed -e "s|@HTTP_PORT@|80|g" -e "s|@HTTPS_PORT@|443|g" -e "s|@ADMIN_PORT@|8080|g" \
        -e "s|@MAX_BODY@|$MAX_BODY|g" \
        -e "s|https://\$host:443|https://\$host|" \
        -e "s|@TLS_CERT@|/etc/doorward/tls/cert.pem|g" \
        -e "s|@TLS_KEY@|/etc/doorward/tls/key.pem|g" \
        "$SRC/provisioning/nginx/doorward.conf" >"$NGINX/sites-available/doorward"
    chmod 0644 "$NGINX/sites-available/doorward"
    ln -sfn ../sites-available/doorward "$NGINX/sites-enabled/doorward"
    rm -f "$NGINX/sites-enabled/default"
fi

# ---- 10. migrate and start -------------------------------------------------------------
if [ "$DO_VENV" -eq 1 ] && { [ -z "$ROOT" ] || [ "$OS_ROOT" -eq 1 ]; }; then
    say "migrating the local replica"
    if [ "$DO_USERS" -eq 1 ]; then
        target runuser -u "$SERVICE_USER" -- "$TVENV/bin/doorward" --config "$TCONFIG" migrate
    else
        target "$TVENV/bin/doorward" --config "$TCONFIG" migrate
    fi
fi
if [ "$DO_NGINX" -eq 1 ] && [ "$OS_ROOT" -eq 1 ] && [ -x "$ROOT/usr/sbin/nginx" ]; then
    say "checking the nginx site inside the root (nginx -t)"
    target nginx -t -q || die "nginx -t refused the site in $ROOT"
fi
if [ "$DO_SYSTEMD" -eq 1 ] && [ -n "$ROOT" ]; then
    say "skipped in --root $ROOT: systemctl daemon-reload/enable/restart (no service manager in a root)"
fi
if [ "$DO_SYSTEMD" -eq 1 ] && [ -z "$ROOT" ]; then
    systemctl daemon-reload
    units=(doorward.service)
    # With a central MySQL the admin page is served centrally (the door's least-privilege
    # account has no rights on the admin tables): the door's own admin unit stays off.
    if "$VENV/bin/python" -c 'import sys; from appliance.config import load_config; sys.exit(0 if load_config(sys.argv[1]).database.url else 1)' "$CONFIG"; then
        say "central database configured: doorward-admin stays disabled (serve the admin page centrally)"
        systemctl disable --now doorward-admin.service >/dev/null 2>&1 || true
    else
        units+=(doorward-admin.service)
    fi
    systemctl enable "${units[@]}"
    systemctl restart "${units[@]}"
    if [ "$DO_NGINX" -eq 1 ]; then
        nginx -t
        systemctl enable nginx
        systemctl reload-or-restart nginx
    fi
fi
say "done: device $DEVICE_ID; config $CONFIG; data $DATA"
[ -n "$ROOT" ] || say "check it with: sudo -u $SERVICE_USER $VENV/bin/doorward --config /etc/doorward/doorward.toml doctor"
exit
}
