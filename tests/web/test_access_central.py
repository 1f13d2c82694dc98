"""A door access rule written through the admin page on the real MariaDB reaches the door.

The page runs on the central database with a started sync worker, as `doorward run` wires it:
saving a rule audits a user_* action, which wakes the worker, which pulls the rule into the
door's SQLite replica, where ReplicaCredentials applies it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from werkzeug.datastructures import MultiDict

from appliance.core import Verdict
from appliance.store.models import Device, User
from appliance.store.repository import ReplicaCredentials
from tests.mariadb_scratch import scratch_database, url_of
from tests.support.waiting import eventually

from .conftest import ADMIN_PW, csrf_of, login

pytestmark = pytest.mark.mysql

MON_08 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)  # a Monday
MON_20 = datetime(2025, 6, 2, 20, 0, tzinfo=UTC)


@pytest.fixture
def central_url() -> Iterator[str]:
    """A private database on the real MariaDB (dropped afterwards)."""
    with scratch_database() as name:
        yield url_of(name)


def test_rule_from_the_page_on_mariadb_governs_the_door_replica(
    admin_config, db, central_url
) -> None:
    from appliance.security import pin_hasher
    from appliance.store.central import open_central
    from appliance.store.sync import SyncWorker
    from web_admin import create_app
    from web_admin.accounts import create_account

    hasher = pin_hasher(admin_config)
    central = open_central(admin_config, central_url, migrate=True)
    create_account(central, "admin", ADMIN_PW, "admin")
    with central.session() as s:
        s.add(Device(id="front-door", name="Front door"))
        user = User(number=77, name="Grace", pin_hash=hasher.hash("1357"))
        s.add(user)
        s.flush()
        uid = user.id
    # a long interval: only the page's trigger can bring the rule over quickly
    worker = SyncWorker(admin_config, central, db, interval_s=3600)
    worker.start()
    try:
        app = create_app(config=admin_config, db=central, local_db=db, sync=worker,
                         test_config={"TESTING": True, "BOOTSTRAP_ADMIN": False})  # fmt: skip
        c = app.test_client()
        assert login(c).status_code == 302

        def verdict(when: datetime) -> Verdict:
            creds = ReplicaCredentials(db, hasher, device_id="front-door", now=lambda: when,
                                       tz=UTC)  # fmt: skip
            return creds.check(77, "1357").verdict

        eventually(
            lambda: verdict(MON_20) is Verdict.OK, what="the door sees the change"
        )  # first round: the user, no rules yet
        token = csrf_of(c.get(f"/users/{uid}").text)
        form = MultiDict([("csrf_token", token), ("door", "front-door"), ("from", "07:00"),
                          ("until", "19:00")] + [("days", str(d)) for d in range(5)])  # fmt: skip
        t0 = time.monotonic()
        assert c.post(f"/users/{uid}/access", data=form).status_code == 302
        eventually(
            lambda: verdict(MON_20) is Verdict.WRONG, what="the door sees the change"
        )  # outside the window: refused
        assert time.monotonic() - t0 < 10  # well within one interval (3600 s): triggered
        assert verdict(MON_08) is Verdict.OK  # inside it: accepted

        rule_id = c.get(f"/users/{uid}").text.split("/access/")[1].split("/")[0]
        r = c.post(f"/users/{uid}/access/{rule_id}/delete", data={"csrf_token": token})
        assert r.status_code == 302
        eventually(
            lambda: verdict(MON_20) is Verdict.OK, what="the door sees the change"
        )  # the tombstone removed it at the door
    finally:
        worker.stop()
        central.close()
