"""install.sh, make-cert.sh, the unit and the nginx site, exercised for real in throwaway roots."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from appliance.config import load_config
from tests.provisioning.prov_helpers import REPO, need_tool, run_nginx

PROV = REPO / "provisioning"
SCRIPTS = [PROV / "install.sh", PROV / "make-cert.sh"]
TEST_FLAGS = ["--no-apt", "--no-users", "--no-venv", "--no-systemd"]


def run_install(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(PROV / "install.sh"), "--root", str(root), *TEST_FLAGS, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_template_validates_through_load_config():
    config = load_config(PROV / "doorward.toml.example")
    assert config.device.data_dir == Path("/var/lib/doorward")
    assert config.security.pepper.file == Path("/etc/doorward/secrets/pepper")
    assert config.admin.secret_key.file == Path("/etc/doorward/secrets/admin_secret_key")
    assert config.admin.host == "127.0.0.1"  # the LAN only sees nginx's HTTPS
    assert config.camera.kind == "picamera2"
    assert config.hardware.pin_factory == "lgpio"  # never "auto" on a door: no silent mock pins


def test_a_root_without_an_os_cannot_take_a_venv(tmp_path):
    """--root DIR with a venv needs an OS in DIR (its own python3, used through chroot); a bare
    folder is refused before anything is written, naming the way out."""
    root = tmp_path / "root"
    result = subprocess.run(
        ["bash", str(PROV / "install.sh"), "--root", str(root), "--no-apt", "--no-systemd"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "holds no OS" in result.stderr and "--no-venv --no-users" in result.stderr
    assert not (root / "etc/doorward").exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    exe = need_tool("shellcheck")
    result = subprocess.run([exe, "-x", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_install_into_a_throwaway_root_twice(tmp_path):
    root = tmp_path / "root"
    first = run_install(root, "--device-id", "door-7", "--door-name", "Back door")
    etc = root / "etc/doorward"
    config_path = etc / "doorward.toml"
    secrets = etc / "secrets"
    assert mode(etc) == 0o750
    assert mode(secrets) == 0o700
    assert mode(secrets / "pepper") == 0o600
    assert mode(secrets / "admin_secret_key") == 0o600
    assert len((secrets / "pepper").read_text().strip()) == 64
    assert mode(config_path) == 0o640
    assert mode(etc / "tls/key.pem") == 0o600
    assert mode(etc / "tls/cert.pem") == 0o644
    assert mode(root / "var/lib/doorward") == 0o700
    unit = (root / "etc/systemd/system/doorward.service").read_text()
    cmd = "ExecStart=/opt/doorward/venv/bin/doorward --config /etc/doorward/doorward.toml"
    assert f"{cmd} run --no-admin" in unit.splitlines()
    assert "@" not in unit.split("[Unit]", 1)[1].replace("@system-service", "")
    admin_unit = (root / "etc/systemd/system/doorward-admin.service").read_text()
    assert f"{cmd} admin" in admin_unit.splitlines()
    assert "@" not in admin_unit.split("[Unit]", 1)[1].replace("@system-service", "")
    site = (root / "etc/nginx/sites-available/doorward").read_text()
    assert "return 301 https://$host$request_uri;" in site
    assert os.readlink(root / "etc/nginx/sites-enabled/doorward") == "../sites-available/doorward"
    assert "created secret" in first.stdout

    config = load_config(config_path)
    assert config.device.id == "door-7" and config.device.name == "Back door"

    # the second run is harmless: config, secrets and certificate are kept byte for byte
    before = {
        p: p.read_bytes()
        for p in (
            config_path,
            secrets / "pepper",
            secrets / "admin_secret_key",
            etc / "tls/key.pem",
        )
    }
    config_path.write_text(config_path.read_text() + "\n# edited by the owner\n")
    before[config_path] = config_path.read_bytes()
    second = run_install(root, "--device-id", "door-9")
    assert "keeping config" in second.stdout and "keeping secret" in second.stdout
    for path, content in before.items():
        assert path.read_bytes() == content, path
    assert mode(secrets / "pepper") == 0o600 and mode(config_path) == 0o640


def test_install_with_fleet_options(tmp_path):
    pepper = tmp_path / "fleet-pepper"
    pepper.write_text("shared-fleet-pepper\n")
    root = tmp_path / "root"
    run_install(
        root,
        "--device-id",
        "gate-2",
        "--pepper-file",
        str(pepper),
        "--database-url",
        "mysql+pymysql://door_gate_2@db.example.lan:3306/doorward",
    )
    assert (root / "etc/doorward/secrets/pepper").read_text() == "shared-fleet-pepper\n"
    config = load_config(root / "etc/doorward/doorward.toml")
    assert config.database.url == "mysql+pymysql://door_gate_2@db.example.lan:3306/doorward"
    assert config.database.password.file == Path("/etc/doorward/secrets/db_password")


@pytest.mark.parametrize(
    ("admin_lines", "max_upload_mb"),
    [("", 10.0), ("max_upload_mb = 3  # photos\n", 3.0), ("max_upload_mb = 2.5\n", 2.5)],
)
def test_nginx_body_limit_follows_the_configs_max_upload_mb(tmp_path, admin_lines, max_upload_mb):
    """The site's client_max_body_size is the admin page's own limit (the one waitress is given,
    web_admin.serving.max_body_bytes), read from the config; the sign-in form gets 16k."""
    from appliance.config import AdminConfig
    from web_admin.serving import app_max_upload_mb, max_body_bytes

    template = (PROV / "doorward.toml.example").read_text()
    given = tmp_path / "doorward.toml"
    given.write_text(template.replace("[admin]\n", "[admin]\n" + admin_lines, 1))
    assert load_config(given).admin.max_upload_mb == max_upload_mb
    assert app_max_upload_mb(object()) == AdminConfig().max_upload_mb  # a bare WSGI app
    root = tmp_path / "root"
    run_install(root, "--config", str(given))
    site = (root / "etc/nginx/sites-available/doorward").read_text()
    assert "@" not in site.replace("$request_uri", "")
    limits = [line.split()[1] for line in site.splitlines() if "client_max_body_size" in line]
    assert limits == [f"{max_body_bytes(max_upload_mb) // 1024}k;", "16k;"]


def test_install_refuses_a_max_upload_mb_it_cannot_read(tmp_path):
    given = tmp_path / "doorward.toml"
    given.write_text('[admin]\nmax_upload_mb = "lots"\n')
    result = run_install(tmp_path / "root", "--config", str(given), check=False)
    assert result.returncode != 0 and "max_upload_mb" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device-id", "bad id!"], "--device-id"),
        (["--door-name", 'a"b'], "--door-name"),
        (["--tls-cert", "/nonexistent"], "--tls-cert needs --tls-key"),
        (["--config", "/nonexistent.toml"], "cannot read --config"),
        (["--frobnicate"], "unknown option --frobnicate"),
    ],
)
def test_install_rejects_bad_input_and_writes_nothing(tmp_path, args, message):
    root = tmp_path / "root"
    result = run_install(root, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (root / "etc/doorward").exists()


def test_make_cert_provided_certificate_must_match_its_key(tmp_path):
    need_tool("openssl")
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        subprocess.run(
            ["sh", str(PROV / "make-cert.sh"), "--out", str(d), "--cn", d.name],
            check=True,
            capture_output=True,
        )
    out = tmp_path / "out"
    bad = subprocess.run(
        [
            "sh",
            str(PROV / "make-cert.sh"),
            "--out",
            str(out),
            "--cert",
            str(a / "cert.pem"),
            "--key",
            str(b / "key.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "does not belong" in bad.stderr
    assert not (out / "cert.pem").exists()
    good = subprocess.run(
        [
            "sh",
            str(PROV / "make-cert.sh"),
            "--out",
            str(out),
            "--cert",
            str(a / "cert.pem"),
            "--key",
            str(a / "key.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert (out / "cert.pem").read_bytes() == (a / "cert.pem").read_bytes()
    assert mode(out / "key.pem") == 0o600


def _render_unit(
    tmp_path: Path, unit_text: str | None = None, name: str = "doorward.service"
) -> Path:
    prefix = tmp_path / "opt"
    if not (prefix / "venv/bin/doorward").exists():
        (prefix / "venv/bin").mkdir(parents=True)
        (prefix / "venv/bin/doorward").symlink_to(REPO / ".venv/bin/doorward")
    text = unit_text or (PROV / "systemd" / name).read_text()
    text = text.replace("@PREFIX@", str(prefix)).replace("@CONFIG@", "/etc/doorward/doorward.toml")
    path = tmp_path / name
    path.write_text(text)
    return path


def _verify(unit: Path) -> subprocess.CompletedProcess:
    exe = need_tool("systemd-analyze")
    return subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_the_unit(tmp_path):
    result = _verify(_render_unit(tmp_path))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    text = (PROV / "systemd/doorward.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=30",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "SupplementaryGroups=gpio video dialout",
        "StandardOutput=journal",
        "ExecStopPost=@PREFIX@/venv/bin/doorward --config @CONFIG@ lock-relay",
        "ExecStartPre=@PREFIX@/venv/bin/doorward --config @CONFIG@ lock-relay",
    ):
        assert line in text.splitlines(), line


def test_systemd_analyze_verify_the_admin_unit(tmp_path):
    result = _verify(_render_unit(tmp_path, name="doorward-admin.service"))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    lines = (PROV / "systemd/doorward-admin.service").read_text().splitlines()
    for line in (
        "ExecStart=@PREFIX@/venv/bin/doorward --config @CONFIG@ admin",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DevicePolicy=closed",
        "User=doorward",
    ):
        assert line in lines, line
    assert not any(ln.startswith(("DeviceAllow=", "SupplementaryGroups=")) for ln in lines)


def test_the_door_unit_leaves_the_admin_page_to_its_own_unit():
    lines = (PROV / "systemd/doorward.service").read_text().splitlines()
    assert "ExecStart=@PREFIX@/venv/bin/doorward --config @CONFIG@ run --no-admin" in lines
    help_text = subprocess.run(
        [str(REPO / ".venv/bin/doorward"), "admin", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0, help_text.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    """The verify test can fail: a misspelt key is reported."""
    broken = (PROV / "systemd/doorward.service").read_text().replace("WatchdogSec=", "WatchdogSek=")
    result = _verify(_render_unit(tmp_path, broken))
    assert "Unknown key" in result.stderr


def test_lock_relay_command_the_unit_runs_exists():
    result = subprocess.run(
        [str(REPO / ".venv/bin/doorward"), "lock-relay", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# ---- nginx: real TLS on loopback, HTTP redirected ---------------------------------------------


class _Admin(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"admin proto={self.headers.get('X-Forwarded-Proto')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def nginx_front(tmp_path):
    need_tool("nginx")
    need_tool("openssl")
    tls = tmp_path / "tls"
    subprocess.run(
        ["sh", str(PROV / "make-cert.sh"), "--out", str(tls), "--cn", "localhost"],
        check=True,
        capture_output=True,
    )
    admin = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    try:
        with run_nginx(tmp_path, admin.server_address[1], tls / "cert.pem", tls / "key.pem") as (
            http_port,
            https_port,
        ):
            yield http_port, https_port, tls
    finally:
        admin.shutdown()
        admin.server_close()


def test_nginx_serves_the_admin_over_tls_and_redirects_http(nginx_front):
    import http.client

    http_port, https_port, tls = nginx_front
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    conn.request("GET", "/users?x=1", headers={"Host": "localhost"})
    resp = conn.getresponse()
    assert resp.status == 301
    assert resp.getheader("Location") == f"https://localhost:{https_port}/users?x=1"
    resp.read()
    conn.close()

    ctx = ssl.create_default_context(cafile=str(tls / "cert.pem"))  # trust our self-signed cert
    conn = http.client.HTTPSConnection("localhost", https_port, timeout=5, context=ctx)
    conn.request("GET", "/")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"admin proto=https"
    # HSTS comes from the admin page itself once it sees HTTPS (tests/provisioning/test_front.py)
    assert resp.getheader("Server") == "nginx"  # no version: server_tokens off
    conn.close()

    strict = ssl.create_default_context()  # the system store does not know our cert
    conn = http.client.HTTPSConnection("localhost", https_port, timeout=5, context=strict)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/")
    conn.close()
