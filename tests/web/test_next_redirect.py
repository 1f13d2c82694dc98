"""`next` after login: only a same-site relative path, whatever string an attacker sends."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web_admin.auth import safe_next

from .conftest import ADMIN_PW, csrf_of

# what an attacker would mix in: slashes, backslashes, controls, spaces, scheme/host pieces
PIECES = list("/\\\t\r\n\x00\x0b\x0c \u00a0\u2028\u3000:@.?#%=aeX1\u0660") + [
    "//", "http:", "evil.com", "%09", "%0d%0a"]  # fmt: skip
TRICKY = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)
ANY = st.one_of(st.text(max_size=40), TRICKY)


def _leaves_site(location: str) -> bool:
    """Would a browser take this Location off the site? It drops tab/CR/LF and trims controls
    and spaces, treats backslash as slash, and follows scheme-relative //host."""
    seen = "".join(c for c in location if c not in "\t\r\n").strip("\x00\x01\x02 \x0b\x0c\x1f")
    seen = seen.replace("\\", "/")
    parts = urllib.parse.urlsplit(seen)
    return bool(parts.scheme or parts.netloc) or seen.startswith("//") or not seen.startswith("/")


@pytest.mark.parametrize(
    "target",
    ["//evil.com", "/\t/evil.com", "/%09/evil.com", "\t//evil.com", "/\\evil.com", "https://e.x/",
     " //evil.com", "/\r\n/evil.com", "javascript:alert(1)", "/\u3000/evil.com"],
)  # fmt: skip
def test_known_open_redirects_are_refused(target: str) -> None:
    got = safe_next(urllib.parse.unquote(target))
    assert got is None or not _leaves_site(got), got


@given(ANY)
@settings(max_examples=3000, deadline=None)
def test_safe_next_never_leaves_the_site(target: str) -> None:
    got = safe_next(target)
    assert got is None or (not _leaves_site(got) and got.isprintable())


def test_plain_paths_are_kept() -> None:
    assert safe_next("/users/?q=ada&page=2") == "/users/?q=ada&page=2"
    assert safe_next("/events") == "/events"


@given(ANY)
@settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
def test_login_with_any_next_stays_on_site_and_never_500s(app, target: str) -> None:
    c = app.test_client()
    query = "?next=" + urllib.parse.quote(target, safe="")
    page = c.get("/login" + query)
    assert page.status_code == 200
    r = c.post("/login" + query, data={"csrf_token": csrf_of(page.text, last=True),
                                       "username": "admin", "password": ADMIN_PW})  # fmt: skip
    assert r.status_code == 302, r.status_code
    assert not _leaves_site(r.headers["Location"]), r.headers["Location"]


def test_encoded_tab_and_crlf_next_through_the_page(app) -> None:
    for raw in ("/%09/evil.com", "/%0d%0aX:y"):
        c = app.test_client()
        page = c.get("/login?next=" + raw)
        form = {"csrf_token": csrf_of(page.text, last=True), "username": "admin",
                "password": ADMIN_PW}  # fmt: skip
        r = c.post("/login?next=" + raw, data=form)
        assert r.status_code == 302
        assert not r.headers["Location"].startswith("//"), r.headers["Location"]
        assert "X" not in r.headers or r.headers.get("X") is None
