"""One person per user at `doorward enroll`, on real photos: two people under one user, a
photo of an enrolled user given to another, and more than five photos are refused, naming
the photos and distances, and nothing is stored."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from appliance.cli import main

pytestmark = pytest.mark.faces


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    return cfg


def enroll(cfg: Path, number: int, name: str, *photos: Path) -> int:
    args = ["--config", str(cfg), "enroll", "--number", str(number), "--name", name,
            "--pin", "2468"]  # fmt: skip
    for p in photos:
        args += ["--photo", str(p)]
    return main(args)


def users(cfg: Path) -> list[tuple[int, int]]:
    db = cfg.parent / "var" / "doorward.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT u.number, COUNT(t.id) FROM users u LEFT JOIN face_templates t "
            "ON t.user_id = u.id GROUP BY u.id ORDER BY u.number"
        ).fetchall()


def test_two_people_as_one_user_are_refused_naming_the_photos_and_distance(
    cfg: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = faces_dir / "people"
    capsys.readouterr()
    rc = enroll(cfg, 1, "Two", people / "biden/biden1.jpg", people / "obama/obama1.jpg")
    assert rc == 2
    err = capsys.readouterr().err
    assert "do not show one person" in err
    m = re.search(r"biden1\.jpg ~ \S*obama1\.jpg: (\d\.\d{3})", err)
    assert m, err
    assert float(m.group(1)) > 0.59  # the distance named is above the threshold
    assert users(cfg) == []
    # the same person's photos are accepted
    assert enroll(cfg, 1, "Barack", people / "obama/obama1.jpg", people / "obama/obama2.jpg") == 0
    assert users(cfg) == [(1, 2)]


def test_a_photo_of_an_enrolled_user_for_another_user_is_refused(
    cfg: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = faces_dir / "people"
    assert enroll(cfg, 1, "Barack", people / "obama/obama1.jpg", people / "obama/obama2.jpg") == 0
    capsys.readouterr()
    assert enroll(cfg, 2, "Impostor", people / "obama/obama3.jpg") == 2
    err = capsys.readouterr().err
    assert "obama3.jpg matches user 1 Barack (distance 0." in err
    assert enroll(cfg, 2, "Joe", people / "biden/biden1.jpg", people / "biden/biden2.jpg") == 0
    assert users(cfg) == [(1, 2), (2, 2)]


def test_more_than_five_photos_are_refused_before_any_is_decoded(
    cfg: Path, faces_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obama = sorted((faces_dir / "people/obama").glob("obama[1-4].jpg"))
    junk = tmp_path / "not_a_photo.jpg"
    junk.write_text("not a JPEG", encoding="utf-8")  # decoding it would be a different error
    photos = [*obama, faces_dir / "people/obama/obama_480p.jpg", junk]
    capsys.readouterr()
    assert enroll(cfg, 1, "Six", *photos) == 2
    assert "6 new photo(s) given: a user has 1 to 5 photos" in capsys.readouterr().err
    assert users(cfg) == []
