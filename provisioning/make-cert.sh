#!/bin/sh
# Owns the admin page's TLS certificate: a self-signed one (ECDSA P-256), or a provided one.
# Never replaces an existing certificate unless --force is given.
set -eu

usage() {
    cat <<USAGE
Usage: make-cert.sh --out DIR [--cn NAME] [--san LIST] [--days N] [--force]
       make-cert.sh --out DIR --cert FILE --key FILE     (install a provided certificate)

Writes DIR/cert.pem (0644) and DIR/key.pem (0600).
  --cn NAME   common name (default: this host's name)
  --san LIST  subjectAltName, e.g. "DNS:door1.lan,IP:192.0.2.10" (default: DNS:<cn>,DNS:localhost,IP:127.0.0.1)
  --days N    validity in days (default 3650)
USAGE
}

out="" cn="" san="" days=3650 force=0 cert="" key=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --cn) cn=$2; shift 2 ;;
        --san) san=$2; shift 2 ;;
        --days) days=$2; shift 2 ;;
        --cert) cert=$2; shift 2 ;;
        --key) key=$2; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "make-cert.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
[ -n "$out" ] || { echo "make-cert.sh: --out DIR is required" >&2; exit 2; }
case "$days" in ''|*[!0-9]*) echo "make-cert.sh: --days must be a number, got $days" >&2; exit 2 ;; esac

mkdir -p "$out"
if [ -e "$out/cert.pem" ] && [ -e "$out/key.pem" ] && [ "$force" -eq 0 ]; then
    echo "make-cert.sh: $out/cert.pem exists; keeping it (use --force to replace)"
    exit 0
fi

old_umask=$(umask)
umask 077
if [ -n "$cert" ] || [ -n "$key" ]; then
    [ -r "$cert" ] || { echo "make-cert.sh: cannot read certificate $cert" >&2; exit 1; }
    [ -r "$key" ] || { echo "make-cert.sh: cannot read key $key" >&2; exit 1; }
    cert_pub=$(openssl x509 -in "$cert" -noout -pubkey) \
        || { echo "make-cert.sh: $cert is not a PEM certificate" >&2; exit 1; }
    key_pub=$(openssl pkey -in "$key" -pubout) \
        || { echo "make-cert.sh: $key is not a PEM private key" >&2; exit 1; }
    [ "$cert_pub" = "$key_pub" ] \
        || { echo "make-cert.sh: $key does not belong to $cert" >&2; exit 1; }
    cp "$key" "$out/key.pem.new"
    cp "$cert" "$out/cert.pem.new"
    how="provided"
else
    [ -n "$cn" ] || cn=$(hostname 2>/dev/null || echo doorward)
    [ -n "$san" ] || san="DNS:$cn,DNS:localhost,IP:127.0.0.1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$out/key.pem.new" -out "$out/cert.pem.new" -days "$days" \
        -subj "/CN=$cn/O=Doorward" -addext "subjectAltName=$san" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "extendedKeyUsage=serverAuth" 2>/dev/null
    how="self-signed"
fi
umask "$old_umask"
chmod 600 "$out/key.pem.new"
chmod 644 "$out/cert.pem.new"
mv "$out/key.pem.new" "$out/key.pem"
mv "$out/cert.pem.new" "$out/cert.pem"
echo "make-cert.sh: $how certificate in $out/cert.pem ($(openssl x509 -in "$out/cert.pem" -noout -enddate))"
