"""Headless Chromium: create a guest code, open the simulated door with it from the door
panel, revoke it, and see the door refuse it (real waitress server, MockFactory door)."""

from __future__ import annotations

import pytest

from .test_browser import _login, _shot, browser, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.faces, pytest.mark.slow]


def _events(db, kind: str) -> list:
    from sqlalchemy import select

    from appliance.store.models import AccessEvent

    with db.session() as s:
        return list(s.scalars(select(AccessEvent).where(AccessEvent.kind == kind)))


def test_create_use_and_revoke_a_guest_code_in_the_browser(server, browser) -> None:  # noqa: F811
    from tests.support.waiting import eventually

    url, db = server["url"], server["db"]
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _login(page, url)

    page.goto(url + "/policies/guests")
    page.locator("#guest-name").fill("Plumber")
    page.locator("#guest-uses").fill("2")
    page.get_by_role("button", name="Create code").click()
    page.wait_for_selector("#issued-keys")
    keys = page.locator("#issued-keys").inner_text().strip()
    assert keys.startswith("0*") and keys.endswith("#") and len(keys) == 13
    _shot(page, "guest-code-issued")
    row = page.locator("#guests tbody tr").first
    assert "Plumber" in row.inner_text() and "0 of 2" in row.inner_text()

    # the code opens the simulated door (no face check), with a guest_entry alert
    page.goto(url + "/device/")
    page.get_by_label("Type a code").fill(keys)
    page.get_by_role("button", name="Send", exact=True).click()
    try:
        eventually(lambda: len(_events(db, "guest_entry")) == 1, 30, interval=0.2,
                   what="a guest_entry event")  # fmt: skip
    except AssertionError:
        recent = [(e.kind, e.reason) for e in server["door"].recent]
        raise AssertionError(f"no guest_entry; the door recorded {recent}") from None
    page.goto(url + "/policies/guests")
    assert "1 of 2" in page.locator("#guests tbody tr").first.inner_text()

    # revoke it: the door refuses it from now on (the embedded default: one database)
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator("#guests tbody tr").first.inner_text()
    _shot(page, "guest-code-revoked")
    page.goto(url + "/device/")
    page.get_by_label("Type a code").fill(keys)
    page.get_by_role("button", name="Send", exact=True).click()

    def refused() -> bool:
        return bool(_events(db, "code_wrong"))

    eventually(refused, 60, interval=0.2, what="the revoked code refused")
    assert len(_events(db, "guest_entry")) == 1  # it did not open again
    assert [e.reason for e in _events(db, "code_wrong")] == ["guest_revoked"]
    ctx.close()
    assert not errors, errors
