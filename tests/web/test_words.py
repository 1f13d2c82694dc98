"""The admin page in words: the first user's guidance, names next to numbers, one door name."""

from __future__ import annotations

from appliance.store.models import AccessEvent, Device, User


def test_with_no_users_the_dashboard_says_how_to_add_the_first(client, admin_config) -> None:
    page = client.get("/").text
    assert 'id="first-steps"' in page and "Add your first user" in page
    assert 'href="/users/new"' in page and "doorward enroll --number 1" in page
    assert str(admin_config.data_dir / "initial-admin-password") in page
    assert "doorward admin-user passwd admin" in page


def test_the_guidance_goes_once_someone_is_enrolled(client, db) -> None:
    with db.session() as s:
        s.add(User(number=1, name="Kit Harington", pin_hash="x"))
    assert 'id="first-steps"' not in client.get("/").text


def test_names_next_to_numbers_and_the_doors_name(client, db, admin_config) -> None:
    with db.session() as s:
        s.add(User(number=7, name="Rose Leslie", pin_hash="x"))
        s.add(Device(id="garage", name="Garage door"))
        s.add(AccessEvent(device_id="garage", kind="denied_face", user_number=7,
                          reason="mismatch", distance=0.8123))  # fmt: skip
        s.add(AccessEvent(device_id=admin_config.device.id, kind="code_wrong", user_number=42,
                          reason="wrong_code"))  # fmt: skip
    events = client.get("/events").text
    assert "Rose Leslie (7)" in events and "Garage door" in events
    assert "user 42 (not enrolled)" in events
    assert "Face mismatch" in events and "face does not match" in events
    assert "face distance 0.81" in events
    dash = client.get("/").text
    assert "Rose Leslie (7)" in dash and "Wrong code" in dash
    assert f"<title>Dashboard · {admin_config.device.name}</title>" in dash


def test_a_favicon_is_served(client) -> None:
    page = client.get("/").text
    assert 'rel="icon" href="/static/favicon.svg"' in page
    with client.get("/static/favicon.svg") as r:
        assert r.status_code == 200 and b"<svg" in r.data


def test_the_device_pages_own_polling_does_not_keep_a_login_alive(client, db) -> None:
    """An open device tab polls status.json every 2 s; that is not a person's activity, so the
    idle timeout still ends the session. A page the person opens does count."""
    from datetime import timedelta

    from sqlalchemy import select

    from appliance.store.models import utcnow
    from appliance.store.models_admin import AdminSession

    def last_seen():
        with db.session() as s:
            return s.scalars(select(AdminSession.last_seen_at)).one()

    earlier = utcnow() - timedelta(seconds=60)
    with db.session() as s:
        s.scalars(select(AdminSession)).one().last_seen_at = earlier
    assert client.get("/device/status.json").status_code == 200
    assert last_seen() == earlier  # polled: untouched
    assert client.get("/device/").status_code == 200
    assert last_seen() > earlier  # opened by the person: touched
