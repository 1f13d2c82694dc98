"""Headless Chromium flows on a real waitress server beside a simulated door (MockFactory)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import eventually

from .conftest import ADMIN_PW

pytestmark = [pytest.mark.browser, pytest.mark.faces, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1366, "height": 768}}


@pytest.fixture
def server(admin_config, db, accounts, face_engine, faces_dir) -> Iterator[dict]:
    from gpiozero.pins.mock import MockFactory

    from appliance.door import Door
    from appliance.hardware.camera import ReplayCamera
    from web_admin import create_app
    from web_admin.serving import AdminServer

    # the door panel shows still photos: liveness (on by default) would refuse every one
    door = Door(admin_config, db, factory=MockFactory(), face_engine=face_engine,
                camera=ReplayCamera([faces_dir / "people/rose_leslie/rose1.jpg"]),
                liveness=False)  # fmt: skip
    door.start()
    app = create_app(config=admin_config, db=db, door=door, test_config={"BOOTSTRAP_ADMIN": False})
    srv = AdminServer(app, "127.0.0.1", 0).start()
    yield {"url": f"http://127.0.0.1:{srv.port}", "door": door, "db": db, "app": app}
    srv.stop()
    assert not srv.thread.is_alive()
    door.close()


@pytest.fixture
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"required in CI: Chromium at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _login(page, url: str) -> None:
    page.goto(url + "/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(ADMIN_PW)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url == url + "/", page.content()[-1500:]


def _wait_event(db, kind: str, timeout: float = 30.0) -> None:
    from sqlalchemy import select

    from appliance.store.models import AccessEvent

    def recorded() -> bool:
        with db.session() as s:
            return (
                s.scalars(select(AccessEvent.id).where(AccessEvent.kind == kind)).first()
                is not None
            )

    eventually(recorded, timeout, interval=0.2, what=f"a {kind} event")


@pytest.mark.parametrize("view", list(VIEWPORTS))
def test_person_flows(server, browser, faces_dir, view: str) -> None:
    url, db = server["url"], server["db"]
    people = faces_dir / "people"
    ctx = browser.new_context(viewport=VIEWPORTS[view])
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # log in
    _login(page, url)
    _shot(page, f"{view}-dashboard")

    # enroll a user with a real photo and see them in the list
    page.goto(url + "/users/new")
    page.get_by_label("User number").fill("1")
    page.get_by_label("Name").fill("Barack Obama")
    page.get_by_label("PIN (4-12 digits)").fill("1234")
    page.set_input_files("#photos", str(people / "obama/obama1.jpg"))
    _shot(page, f"{view}-enroll-form")
    page.get_by_role("button", name="Enroll user").click()
    page.wait_for_load_state()
    assert "enrolled with 1 photo(s)" in page.content(), page.content()[-2500:]
    page.goto(url + "/users/")
    assert page.locator("#users").get_by_text("Barack Obama").is_visible()
    _shot(page, f"{view}-users")

    # the simulated door panel: a grant ...
    page.goto(url + "/device/")
    page.set_input_files("#camera-photo", str(people / "obama/obama2.jpg"))
    page.get_by_role("button", name="Show it to the camera").click()
    page.wait_for_selector("text=The camera now sees obama2.jpg")
    page.get_by_label("Type a code").fill("1*1234#")
    page.get_by_role("button", name="Send", exact=True).click()
    _wait_event(db, "granted")
    # ... and a denial: the right code with someone else's face
    page.set_input_files("#camera-photo", str(people / "biden/biden1.jpg"))
    page.get_by_role("button", name="Show it to the camera").click()
    page.wait_for_selector("text=The camera now sees biden1.jpg")
    for key in "1*1234#":
        page.get_by_role("button", name=f"Key {key}", exact=True).click()
    _wait_event(db, "denied_face")
    page.goto(url + "/device/")
    _shot(page, f"{view}-device-panel")

    # both events on the timeline, each with its snapshot
    page.goto(url + "/events")
    for kind in ("granted", "denied_face"):
        item = page.locator(f'li.event[data-kind="{kind}"]').first
        img = item.locator("img.snap")
        assert img.count() == 1
        assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    _shot(page, f"{view}-events")

    # log out; the old cookie is refused afterwards
    old = next(c for c in ctx.cookies() if c["name"] == "doorward_session")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(url + "/login")
    ctx2 = browser.new_context(viewport=VIEWPORTS[view])
    ctx2.add_cookies([{k: old[k] for k in ("name", "value", "domain", "path")}])
    p2 = ctx2.new_page()
    p2.goto(url + "/users/")
    assert "/login" in p2.url
    _shot(p2, f"{view}-old-cookie-refused")
    ctx2.close()
    ctx.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert os.path.exists(ARTIFACTS / f"{view}-events.png")


@pytest.mark.parametrize("view", list(VIEWPORTS))
def test_door_access_rule_flow(server, browser, admin_config, view: str) -> None:
    """Limit a user to the front door on weekdays 07:00-19:00, see it summarised, remove it."""
    from appliance.security import pin_hasher
    from appliance.store.models import Device, User

    url, db = server["url"], server["db"]
    with db.session() as s:
        s.add(Device(id="front-door", name="Front door"))
        user = User(number=5, name="Ada Lovelace", pin_hash=pin_hasher(admin_config).hash("2468"))
        s.add(user)
        s.flush()
        uid = user.id
    ctx = browser.new_context(viewport=VIEWPORTS[view])
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _login(page, url)
    page.goto(f"{url}/users/{uid}")
    assert page.locator("#access-summary").inner_text() == "all doors, any time"
    page.select_option("#access-door", "front-door")
    for day in ("Sat", "Sun"):
        page.locator("#access-form").get_by_label(day).uncheck()
    page.locator("#access-form").get_by_label("From").fill("07:00")
    page.locator("#access-form").get_by_label("Until").fill("19:00")
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_load_state()
    summary = "front-door Mon–Fri 07:00–19:00"
    assert page.locator("#access-summary").inner_text() == summary, page.content()[-2500:]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.locator("#access").scroll_into_view_if_needed()
    _shot(page, f"{view}-door-access")
    page.goto(url + "/users/")
    assert page.locator("#users td.access").first.inner_text() == summary
    page.goto(f"{url}/users/{uid}")
    page.get_by_role("button", name=f"Remove rule {summary}").click()
    page.wait_for_load_state()
    assert page.locator("#access-summary").inner_text() == "all doors, any time"
    ctx.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors


def _pages(app) -> list[str]:
    """Every GET page without URL arguments (CSV and JSON and images are not pages)."""
    return sorted(
        r.rule for r in app.url_map.iter_rules()
        if "GET" in r.methods and not r.arguments and r.endpoint != "static"
        and not r.rule.endswith((".csv", ".json", ".jpg")) and r.rule != "/login"
    )  # fmt: skip


def _watch(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error"
            and problems.append(f"console: {m.text} at {m.location.get('url')}"))  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on("response", lambda r: r.status >= 500 and problems.append(f"{r.status} {r.url}"))
    return problems


@pytest.mark.parametrize("who", ["admin", "viewer"])
def test_every_page_and_panel_control_without_5xx_or_console_error(server, browser, who) -> None:
    from .conftest import VIEWER_PW

    url = server["url"]
    ctx = browser.new_context(viewport=VIEWPORTS["laptop"])
    page = ctx.new_page()
    problems = _watch(page)
    page.goto(url + "/login")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(ADMIN_PW if who == "admin" else VIEWER_PW)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url == url + "/", page.content()[-800:]
    admin_only = {"/admins"}  # not linked for viewers; asked for anyway, it is a plain 403
    for path in _pages(server["app"]):
        if who == "viewer" and path in admin_only:
            assert page.request.get(url + path).status == 403
            continue
        resp = page.goto(url + path)
        assert resp is not None and resp.status < 500, (path, resp and resp.status)
    page.goto(url + "/device/")
    controls = page.locator("#panel button:visible")
    n = controls.count()
    assert n >= 16 + 1 + 6, n  # keypad, send, sensors (+ camera buttons)
    if who == "viewer":
        for i in range(n):
            assert controls.nth(i).is_disabled(), controls.nth(i).inner_text()
    else:
        labels = [controls.nth(i).inner_text() for i in range(n)]
        for i, label in enumerate(labels):
            button = page.locator("#panel button:visible").nth(i)
            assert button.inner_text() == label
            if button.get_attribute("type") == "button":  # script-driven (webcam)
                button.click()
                continue
            with page.expect_navigation():
                button.click()
            page.wait_for_load_state()
            assert "/device/" in page.url, (label, page.url)
    _shot(page, f"panel-{who}")
    ctx.close()
    assert problems == [], problems
