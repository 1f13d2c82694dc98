"""`doorward ha remove` (decommission) on the real Mosquitto, and `doorward remote list`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from tests.publish.test_home_assistant import broker_up
from tests.support.ha_client import HaClient
from tests.support.waiting import free_port


def doorward(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_ha_remove_clears_discovery_and_retained_topics(need, tmp_path) -> None:
    need(broker_up(), "Mosquitto is not listening on 127.0.0.1:1883")
    tag = uuid.uuid4().hex[:8]
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\nid = "gone"\ndata_dir = "{tmp_path / "var"}"\n'
                   f'[mqtt]\nenabled = true\ntopic_prefix = "dw-{tag}"\n'
                   f'discovery_prefix = "ha-{tag}"\n')  # fmt: skip
    topics = [f"ha-{tag}/device/doorward_gone/config", f"dw-{tag}/gone/state",
              f"dw-{tag}/gone/snapshot", f"dw-{tag}/gone/availability"]  # fmt: skip
    seed = HaClient(prefix=f"ha-{tag}")
    for t in topics:
        seed.publish(t, b'{"seeded": true}', retain=True)
    for t in topics[1:]:
        seed.follow(t)
    seed.wait(lambda: all(seed.raw.get(t) for t in topics), what="the seeded retained topics")
    seed.close()
    r = doorward("--config", str(cfg), "ha", "remove")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["removed"] == topics[0]
    late = HaClient(prefix=f"ha-{tag}")
    try:
        for t in topics[1:]:
            late.follow(t)
        late.follow(f"ha-{tag}/#")
        assert not any(late.raw.get(t) for t in topics)  # nothing retained any more
    finally:
        late.close()


def test_ha_remove_without_a_broker_says_so_and_fails(tmp_path) -> None:
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path / "var"}"\n'
                   f'[mqtt]\nenabled = true\nport = {free_port()}\n')  # fmt: skip
    r = doorward("--config", str(cfg), "ha", "remove", "--timeout", "1")
    assert r.returncode == 1 and "no connection to 127.0.0.1" in r.stderr


def test_remote_list_shows_no_secret(tmp_path, config, db) -> None:
    from appliance.remote.principals import add_principal

    p = add_principal(db, kind="owner", name="ada", phone="+447700900123", may_unlock=True)
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{config.data_dir}"\n')
    r = doorward("--config", str(cfg), "remote", "list")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": p.id, "kind": "owner", "name": "ada",
                                    "phone": "+447700900123", "may_unlock": True,
                                    "active": True}  # fmt: skip
    assert p.label not in r.stdout
