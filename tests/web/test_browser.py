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


# every element that scrolls or hides its overflow, and the page itself: nothing wider than it
_OVERFLOW_JS = """() => {
  const out = [];
  const name = (el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1)
    out.push(`page ${doc.scrollWidth}px wide in a ${window.innerWidth}px window`);
  for (const el of document.querySelectorAll("body *")) {
    const cs = getComputedStyle(el);
    if (cs.display === "none" || el.clientWidth <= 2) continue;
    // a field's own text scrolls inside it
    const field = ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
    if (!field && ["auto", "scroll", "hidden", "clip"].includes(cs.overflowX)
        && el.scrollWidth > el.clientWidth + 1)
      out.push(`${name(el)}: ${el.scrollWidth} > ${el.clientWidth}`);
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > window.innerWidth + 1 && cs.position !== "fixed")
      out.push(`${name(el)} ends at ${Math.round(r.right)}px`);
  }
  return out.slice(0, 8);
}"""


def _seed_everything(server, config, faces_dir) -> int:
    """A user with a long name, events of every decision with snapshots, alerts with long
    errors, audit entries and a mailbox message: what a page could overflow with."""
    from appliance.security import pin_hasher
    from appliance.store.models import AccessEvent, OutboxAlert, User
    from appliance.store.models_admin import AuditEntry

    door, db = server["door"], server["db"]
    with db.session() as s:
        user = User(number=123456789, name="Maximiliana Wolfeschlegelsteinhausenbergerdorff",
                    email="maximiliana.wolfeschlegelsteinhausen@example.org",
                    pin_hash=pin_hasher(config).hash("24682468"))  # fmt: skip
        s.add(user)
        s.flush()
        uid = user.id
        for kind in ("granted", "denied_face", "denied_no_face", "code_wrong", "lockout",
                     "forced", "held_open", "heartbeat"):  # fmt: skip
            s.add(AccessEvent(device_id=config.device.id, kind=kind, user_number=123456789,
                              reason="mismatch" if kind == "denied_face" else None,
                              distance=0.8123 if kind == "denied_face" else None))  # fmt: skip
            s.add(OutboxAlert(kind=kind, state="failed", user_number=123456789,
                              last_error="SMTPServerDisconnected: " + "x" * 150))  # fmt: skip
        for i in range(3):
            detail = {"fields": "name,email,phone,pin," * 6}
            s.add(AuditEntry(actor="admin", action="user_update", target=f"user {i}",
                             ip="127.0.0.1", detail=detail))  # fmt: skip
    door.press_keys("1*0000#")  # a wrong code on the door itself: a recent event
    _wait_event(db, "code_wrong")
    return uid


@pytest.mark.parametrize("view", list(VIEWPORTS))
def test_no_page_is_wider_than_a_phone_or_a_laptop(
    server, browser, admin_config, faces_dir, view
) -> None:
    """Every page, at 390x844 and at 1366x768, with long names, errors and details: nothing
    scrolls sideways and nothing is cut off (tables become cards on the phone)."""
    url = server["url"]
    uid = _seed_everything(server, admin_config, faces_dir)
    ctx = browser.new_context(viewport=VIEWPORTS[view])
    page = ctx.new_page()
    problems = _watch(page)
    _login(page, url)
    paths = [*_pages(server["app"]), f"/users/{uid}", "/login"]
    seen = {}
    for path in paths:
        if path == "/login":
            page.get_by_role("button", name="Log out").click()
            page.wait_for_url(url + "/login")
        resp = page.goto(url + path)
        assert resp is not None and resp.status < 400, (path, resp and resp.status)
        seen[path] = page.evaluate(_OVERFLOW_JS)
        _shot(page, f"{view}-width{path.replace('/', '-') or '-home'}")
    wide = {p: v for p, v in seen.items() if v}
    assert wide == {}, wide
    assert len(seen) >= 10, sorted(seen)
    ctx.close()
    assert problems == [], problems


def test_the_door_panel_shows_the_decision_after_send_and_follows_the_door(
    server, browser, admin_config, faces_dir
) -> None:
    """Send a right code with the user's face: without reloading, the panel says
    "Checking the face" and then "GRANTED  Kit Harington (1)"; the lock tile turns Unlocked and
    back to Locked by itself, from the status JSON the page polls."""
    from appliance.enroll import enroll_user
    from appliance.security import pin_hasher

    people = faces_dir / "people"
    door, db = server["door"], server["db"]
    hasher = pin_hasher(admin_config, db)
    enroll_user(db, door.face, hasher, number=1, name="Kit Harington", pin="2468",
                photos=[people / "kit_harington/kit1.jpg"])  # fmt: skip
    door.camera.set_sources([people / "kit_harington/kit2.jpg"])
    ctx = browser.new_context(viewport=VIEWPORTS["phone"])
    page = ctx.new_page()
    problems = _watch(page)
    _login(page, server["url"])
    page.goto(server["url"] + "/device/")
    assert page.locator("#decision").inner_text() == "No decision yet: send a code."
    page.get_by_label("Type a code").fill("1*2468#")
    page.get_by_role("button", name="Send", exact=True).click()
    decided = "() => document.getElementById('decision').textContent.endsWith('{}')"
    page.wait_for_function(decided.format("GRANTED  Kit Harington (1)"), timeout=30_000)
    assert "granted" in page.locator("#decision").get_attribute("class")
    page.wait_for_function(
        "() => document.querySelector('[data-field=locked]').textContent === 'Locked'",
        timeout=15_000,
    )  # the 5 s pulse ended: the page saw it without a reload
    assert "GRANTED  Kit Harington (1)" in (page.locator("#recent").text_content() or "")
    _shot(page, "phone-panel-decision")
    ctx.close()
    assert problems == [], problems
