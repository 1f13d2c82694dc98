"""SMTP security modes against aiosmtpd: STARTTLS with login, implicit TLS, wrong password."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from appliance.alerts.channels.email import EmailChannel
from appliance.alerts.message import AlertMessage, ChannelError
from appliance.config import EmailConfig
from tests.support.loopback import SmtpServer

from .support import email_section, jpeg_bytes

USER, PASSWORD = "door", "s3cret-from-env"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def _server_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def _auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def _message() -> AlertMessage:
    return AlertMessage(
        id="8e6b1c7e-2222-4d4d-8e8e-abcdefabcdef",
        kind="forced",
        time=datetime(2026, 11, 25, 23, 0, tzinfo=UTC),
        device_id="door-t",
        door="Gate",
        photo_jpeg=jpeg_bytes(1),
    )


@pytest.fixture
def starttls_server(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(
        tls_context=_server_ctx(cert),
        require_starttls=True,
        authenticator=_auth,
        auth_required=True,
    ).start()
    yield server
    server.stop()


def test_starttls_with_login(
    starttls_server: SmtpServer, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOORWARD_TEST_SMTP_PASSWORD", PASSWORD)
    section = email_section(
        starttls_server.port,
        security="starttls",
        username=USER,
        password={"env": "DOORWARD_TEST_SMTP_PASSWORD"},
        ca_file=str(cert[0]),
    )
    config = EmailConfig.convert(section)
    with EmailChannel(config, config.password.resolve("alerts.email.password")) as channel:
        channel.send(_message())
    assert starttls_server.sink.message_ids() == [
        "<8e6b1c7e-2222-4d4d-8e8e-abcdefabcdef@door-t.doorward>"
    ]


def test_wrong_password_is_permanent(starttls_server: SmtpServer, cert: tuple[Path, Path]) -> None:
    section = email_section(
        starttls_server.port, security="starttls", username=USER, ca_file=str(cert[0])
    )
    channel = EmailChannel(EmailConfig.convert(section), "wrong")
    with channel, pytest.raises(ChannelError, match="login failed") as err:
        channel.send(_message())
    assert not err.value.transient
    assert starttls_server.sink.messages == []


def test_untrusted_certificate_is_refused(starttls_server: SmtpServer) -> None:
    section = email_section(starttls_server.port, security="starttls")
    channel = EmailChannel(EmailConfig.convert(section))
    with channel, pytest.raises(ChannelError, match="CERTIFICATE_VERIFY_FAILED"):
        channel.send(_message())


def test_plain_to_a_starttls_only_server_is_refused(starttls_server: SmtpServer) -> None:
    section = email_section(starttls_server.port, security="none")
    channel = EmailChannel(EmailConfig.convert(section))
    with channel, pytest.raises(ChannelError, match="530"):
        channel.send(_message())


def test_implicit_tls(cert: tuple[Path, Path]) -> None:
    server = SmtpServer(ssl_context=_server_ctx(cert)).start()
    try:
        section = email_section(server.port, security="tls", ca_file=str(cert[0]))
        with EmailChannel(EmailConfig.convert(section)) as channel:
            channel.send(_message())
        [msg] = server.sink.messages
        assert [a.get_content_type() for a in msg.iter_attachments()] == ["image/jpeg"]
    finally:
        server.stop()
