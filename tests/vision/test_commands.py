"""eval-pairs input parsing and the command's JSON output on a few real pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.vision.evaluate import read_pairs


def test_read_pairs_accepts_word_booleans(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("file_x,file_y,same\na.jpg,b.jpg,yes\na.jpg,c.jpg,False\na.jpg,d.jpg,1\n")
    pairs = read_pairs(p, Path("/root"))
    assert [x.same for x in pairs] == [True, False, True]
    assert pairs[0].enrolled == Path("/root/a.jpg") and pairs[0].probe == Path("/root/b.jpg")


def test_read_pairs_names_the_bad_line(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("file_x,file_y,same\na.jpg,b.jpg,1\na.jpg,c.jpg,maybe\n")
    with pytest.raises(ValueError, match=r"p\.csv:3: same='maybe'"):
        read_pairs(p)


def test_read_pairs_names_missing_columns(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        read_pairs(p)


@pytest.mark.faces
def test_eval_pairs_command(faces: Path, tmp_path: Path, capsys) -> None:
    csv = tmp_path / "few.csv"
    csv.write_text(
        "file_x,file_y,same\n"
        "people/obama/obama1.jpg,people/obama/obama2.jpg,1\n"
        "people/obama/obama1.jpg,people/biden/biden1.jpg,0\n"
        "people/obama/obama1.jpg,scenes/kit_with_rose.jpg,no\n"  # Obama is not in it
    )
    wall = tmp_path / "wall.png"
    from PIL import Image

    Image.new("RGB", (320, 240), (90, 90, 90)).save(wall)
    with csv.open("a") as fh:
        fh.write(f"people/obama/obama1.jpg,{wall},true\n")
    rc = main(["eval-pairs", "--pairs", str(csv), "--root", str(faces)])
    out = capsys.readouterr()
    assert rc == 0
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["pairs"] == 4 and result["genuine"] == 2 and result["impostor"] == 2
    assert result["false_accepts"] == 0
    assert result["false_rejects"] == 1 and result["no_face"] == 1  # the wall
    assert result["far"] == 0.0 and result["frr"] == 0.5
    assert set(result) >= {"threshold", "median_ms", "p95_ms"}
    assert "pairs" in out.err
