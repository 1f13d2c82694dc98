"""A Mosquitto of the test's own on a free loopback port, speaking TLS only, with a CA, server
and client certificates made by openssl for this test (nothing shared, nothing kept)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .waiting import eventually, free_port


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it must fail


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Pki:
    """CA, a server certificate for 127.0.0.1/localhost, a client certificate, another CA."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=Doorward test {name}", cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (folder / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "door-1")):
        _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
             cwd=folder)  # fmt: skip
        _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=folder)  # fmt: skip
    return Pki(
        ca=folder / "ca.pem", server_cert=folder / "server.pem", server_key=folder / "server.key",
        client_cert=folder / "client.pem", client_key=folder / "client.key",
        other_ca=folder / "other-ca.pem",
    )  # fmt: skip


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def tls_mosquitto(folder: Path, pki: Pki, *, require_client_cert: bool) -> Iterator[int]:
    """Run mosquitto with one TLS listener on 127.0.0.1:<free port>; yields the port."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = folder / "mosquitto.conf"
    # run as root, mosquitto would switch to its own user, who cannot read this test's files
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}per_listener_settings true\n"
        f"listener {port} 127.0.0.1\n"
        f"allow_anonymous true\n"
        f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        f"require_certificate {'true' if require_client_cert else 'false'}\n"
        f"tls_version tlsv1.2\n"
        f"persistence false\n"
        f"log_dest file {folder / 'mosquitto.log'}\n"
    )
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        eventually(lambda: proc.poll() is not None or _listening(port), 10,
                   what=f"mosquitto listening on {port}")  # fmt: skip
        if proc.poll() is not None:
            log = (folder / "mosquitto.log").read_text(errors="replace")
            raise AssertionError(f"mosquitto exited {proc.returncode}: {log[-2000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
