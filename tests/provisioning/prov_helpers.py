"""Shared helpers for the provisioning tests: repo path and the CI-aware tool lookup."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.ci_gate import require
from tests.support.waiting import eventually, free_port

REPO = Path(__file__).resolve().parents[2]


def need_tool(name: str) -> str:
    """The tool's path; a missing tool fails under CI=true and skips elsewhere."""
    path = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin") if name else None)
    require(path is not None, f"{name} is not installed (see provisioning/README.md, Tests)")
    assert path is not None
    return path


def self_signed_cert(out: Path, cn: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway self-signed certificate made by openssl: (cert.pem, key.pem)."""
    openssl = need_tool("openssl")
    out.mkdir(parents=True, exist_ok=True)
    cert, key = out / "cert.pem", out / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=DNS:localhost,IP:{cn}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextlib.contextmanager
def run_nginx(
    tmp_path: Path, admin_port: int, cert: Path, key: Path, max_upload_mb: float = 10.0
) -> Iterator[tuple[int, int]]:
    """The real provisioning/nginx/doorward.conf, rendered for loopback ports in tmp_path and
    run by the real nginx in front of `admin_port`; yields (http_port, https_port). The body
    limit is rendered as install.sh renders it for a config with this admin.max_upload_mb."""
    from web_admin.serving import max_body_bytes

    exe = need_tool("nginx")
    tmp_path.mkdir(parents=True, exist_ok=True)
    http_port, https_port = free_port(), free_port()
    site = (REPO / "provisioning/nginx/doorward.conf").read_text()
    for k, value in {
        "@HTTP_PORT@": str(http_port),
        "@HTTPS_PORT@": str(https_port),
        "@ADMIN_PORT@": str(admin_port),
        "@TLS_CERT@": str(cert),
        "@TLS_KEY@": str(key),
        "@MAX_BODY@": f"{max_body_bytes(max_upload_mb) // 1024}k",
    }.items():
        site = site.replace(k, value)
    # loopback only in tests (clients may still come from 127.0.0.3, 127.0.0.4 ...)
    site = site.replace(f"listen {http_port}", f"listen 127.0.0.1:{http_port}")
    site = site.replace(f"listen {https_port}", f"listen 127.0.0.1:{https_port}")
    site = "\n".join(line for line in site.splitlines() if "[::]" not in line)
    (tmp_path / "site.conf").write_text(site)
    # as root (a container) nginx's workers become nobody, who cannot write the temporary files
    # of request bodies into this test's private tmp_path: they stay root there
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"""
{user}
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/site.conf;
}}
"""
    )
    check = subprocess.run(
        [exe, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [exe, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], stderr=subprocess.DEVNULL
    )
    try:

        def listening() -> bool:  # nginx has no readiness signal here: its socket is one
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
                return True
            except OSError:
                assert proc.poll() is None, (tmp_path / "error.log").read_text()
                return False

        eventually(listening, 10, interval=0.05, what="nginx listening")
        yield http_port, https_port
    finally:
        proc.terminate()
        proc.wait(10)
