"""Security headers, cookies, no inline script, and upload validation (bombs, fakes, 413)."""

from __future__ import annotations

import io
import re
import struct
import time
import tracemalloc
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from web_admin.auth import SESSION_COOKIE
from web_admin.uploads import Limits, UploadError, check_image

from .conftest import ADMIN_PW, csrf_of, login

TEMPLATES = Path(__file__).resolve().parents[2] / "web_admin" / "templates"


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny PNG that declares w x h pixels (one short IDAT: the file is ~70 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_headers_on_every_page(client) -> None:
    for url in ("/", "/users/", "/login", "/events", "/device/"):
        r = client.get(url)
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags_and_secure_under_https(app) -> None:
    c = app.test_client()
    r = login(c)
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # behind the nginx TLS front (loopback + X-Forwarded-Proto: https) every cookie is Secure
    c2 = app.test_client()
    page = c2.get("/login", headers={"X-Forwarded-Proto": "https"})
    token = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)[-1]
    r = c2.post(
        "/login",
        data={"csrf_token": token, "username": "admin", "password": "correct horse battery"},
        headers={"X-Forwarded-Proto": "https"},
        environ_base={"wsgi.url_scheme": "http"},
    )
    cookies = r.headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in h for h in cookies)
    assert "Strict-Transport-Security" in r.headers


def test_flash_cookie_is_secure_under_https(app) -> None:
    """Flask writes its signed (flash) cookie after the after_request hooks: the session
    interface itself must mark it Secure behind the TLS front, and only there."""
    https = {"X-Forwarded-Proto": "https"}
    for headers, secure in ((https, True), ({}, False)):
        c = app.test_client()
        page = c.get("/login", headers=headers)
        r = c.post("/login", headers=headers, data={
            "csrf_token": csrf_of(page.text, last=True), "username": "admin",
            "password": ADMIN_PW,
        })  # fmt: skip
        assert r.status_code == 302
        token = csrf_of(c.get("/users/", headers=headers).text)
        r = c.post("/policies/lockdown", headers=headers, data={"csrf_token": token, "on": "0"})
        flash = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("doorward_flash=")]
        assert len(flash) == 1, r.headers.getlist("Set-Cookie")  # the message is in it
        assert ("; Secure" in flash[0]) is secure, flash[0]
        assert "HttpOnly" in flash[0] and "SameSite=Lax" in flash[0]


def test_pictures_behind_the_login_are_kept_by_no_cache(app, client, admin_config) -> None:
    """Snapshots, enrollment photos and the camera picture are `private, no-store` (the
    mailbox photo: tests/web/test_alerts_page.py); the page's own CSS and script may be cached."""
    jpeg = b"\xff\xd8\xff\xe0fake"
    admin_config.snapshot_dir.mkdir(parents=True, exist_ok=True)
    (admin_config.snapshot_dir / "face.jpg").write_bytes(jpeg)
    (admin_config.data_dir / "enroll" / "1").mkdir(parents=True)
    (admin_config.data_dir / "enroll" / "1" / "1.jpg").write_bytes(jpeg)
    frame = np.zeros((120, 160, 3), np.uint8)
    app.extensions["doorward"]["door"] = SimpleNamespace(
        camera=SimpleNamespace(read=lambda: frame), simulator=None
    )
    for url in ("/snapshots/face.jpg", "/users/1/photos/1.jpg", "/device/camera.jpg"):
        with client.get(url) as r:
            assert r.status_code == 200 and r.mimetype == "image/jpeg", url
            assert r.headers["Cache-Control"] == "private, no-store", (url, r.headers)
            assert "Expires" not in r.headers, url
    with client.get("/static/app.css") as css:
        assert css.status_code == 200 and "no-store" not in css.headers.get("Cache-Control", "")


def test_forwarded_proto_from_elsewhere_is_ignored(app) -> None:
    c = app.test_client()
    r = c.get("/login", headers={"X-Forwarded-Proto": "https"},
              environ_base={"REMOTE_ADDR": "192.168.1.50"})  # fmt: skip
    assert all("Secure" not in h for h in r.headers.getlist("Set-Cookie"))


def test_templates_have_no_inline_script_or_style() -> None:
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag, f"{path.name}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: inline event handler"
        assert "style=" not in text and "<style" not in text, f"{path.name}: inline style"


def test_png_declaring_30000_squared_is_refused_fast_and_small() -> None:
    data = _png_header_only(30000, 30000)
    assert len(data) < 200
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(UploadError, match="too (large|many)"):
        check_image(data, "bomb.png", Limits(40_000_000, 12_000))
    took = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak} bytes"  # 30000^2 RGB would be 2.7 GB
    assert took < 1.0


def test_bomb_upload_through_the_page_names_the_file(client, token) -> None:
    r = client.post(
        "/users/new",
        data={"csrf_token": token, "number": "7", "name": "Bomb", "pin": "1234", "active": "1",
              "photos": [(io.BytesIO(_png_header_only(30000, 30000)), "bomb.png")]},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert r.status_code == 400
    assert "bomb.png" in r.text and "too large" in r.text


def test_non_image_named_jpg_is_refused(client, token) -> None:
    r = client.post(
        "/users/new",
        data={"csrf_token": token, "number": "8", "name": "Fake", "pin": "1234",
              "photos": [(io.BytesIO(b"#!/bin/sh\necho not a photo\n" * 20), "face.jpg")]},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert r.status_code == 400
    assert "face.jpg" in r.text and "not a JPEG or PNG" in r.text


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [("photo.gif", "GIF", "only .jpg"), ("photo.png", "GIF", "only JPEG and PNG")],
)
def test_other_formats_are_refused(name: str, fmt: str, message: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, fmt)
    with pytest.raises(UploadError, match=message):
        check_image(buf.getvalue(), name, Limits(40_000_000, 12_000))


def test_oversize_body_gets_413(client, token, admin_config) -> None:
    limit = int(admin_config.admin.max_upload_mb * 1024 * 1024)
    head = (
        f'--b\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        '--b\r\nContent-Disposition: form-data; name="photos"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + b"\xff\xd8" + b"\0" * (limit + 10) + b"\r\n--b--\r\n"
    r = client.post("/users/new", data=body, content_type="multipart/form-data; boundary=b")
    assert r.status_code == 413


def test_every_form_carries_a_filled_csrf_token(client) -> None:
    for url in ("/users/", "/users/new", "/admins", "/account/password"):
        html = client.get(url).text
        forms = re.findall(r'<form[^>]*method="post".*?</form>', html, re.S)
        assert forms, url
        for form in forms:
            m = re.search(r'name="csrf_token" value="([^"]*)"', form)
            assert m and len(m.group(1)) >= 32, f"{url}: a form without its CSRF token"


def _png(w: int, h: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 130, 140)).save(buf, "PNG")
    return buf.getvalue()


def test_huge_flat_png_is_refused_by_its_header_with_a_clear_message() -> None:
    from web_admin.uploads import PNG_MAX_PIXELS, Limits, UploadError, check_image

    data = _png(6000, 6000)  # ~100 KB on disk, 108 MB of RGB once decoded
    assert len(data) < 200_000 and PNG_MAX_PIXELS < 6000 * 6000
    with pytest.raises(UploadError, match=r"big\.png: a 6000x6000 PNG is too large.*JPEG"):
        check_image(data, "big.png", Limits(40_000_000, 12_000))


def test_large_photos_are_decoded_bounded_by_the_door_decoder() -> None:
    import io

    from PIL import Image

    from web_admin.uploads import UPLOAD_MAX_SIDE as MAX_PHOTO_SIDE
    from web_admin.uploads import Limits, check_image

    buf = io.BytesIO()
    Image.new("RGB", (6000, 5000), (90, 100, 110)).save(buf, "JPEG", quality=80)
    rgb = check_image(buf.getvalue(), "big.jpg", Limits(40_000_000, 12_000))
    assert max(rgb.shape[:2]) <= MAX_PHOTO_SIDE and rgb.shape[2] == 3
    rgb = check_image(_png(3900, 4000), "big.png", Limits(40_000_000, 12_000))
    assert rgb.shape == (MAX_PHOTO_SIDE, MAX_PHOTO_SIDE * 3900 // 4000, 3)


def test_uploads_are_decoded_one_at_a_time() -> None:
    from werkzeug.datastructures import FileStorage

    from web_admin.uploads import Limits, iter_uploads

    files = [FileStorage(io.BytesIO(_png(100, 100)), filename=f"p{i}.png") for i in range(3)]
    it = iter_uploads(files, Limits(40_000_000, 12_000), 5)
    label, rgb = next(it)
    assert label == "p0.png" and rgb.shape == (100, 100, 3)
    # only the first file has been read; the others are still waiting, unread
    assert files[0].stream.closed and not files[1].stream.closed and files[1].stream.tell() == 0
    assert [name for name, _ in it] == ["p1.png", "p2.png"]
