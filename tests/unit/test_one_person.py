"""The one-person rules on constructed encodings (the real-photo cases are in
tests/e2e/test_one_person.py and tests/web/test_users.py), the margins, the photo count, and
the store's five-template limit on every ORM write."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.enroll import (
    EnrollError,
    Gallery,
    check_one_person,
    check_photo_count,
    security_margins,
)


def vec(*head: float) -> np.ndarray:
    v = np.zeros(128)
    v[: len(head)] = head
    return v


def gallery(rows: list[tuple[int, np.ndarray]]) -> Gallery:
    return Gallery(
        np.stack([v for _, v in rows]),
        np.array([u for u, _ in rows]),
        {1: (11, "Ada"), 2: (22, "Bo"), 3: (33, "Cy")},
    )


def test_photos_further_apart_than_the_threshold_are_refused_with_every_distance() -> None:
    with pytest.raises(EnrollError) as e:
        check_one_person([("a.jpg", vec(0)), ("b.jpg", vec(0.5)), ("c.jpg", vec(0.7))],
                         threshold=0.6)  # fmt: skip
    assert "a.jpg ~ c.jpg: 0.700" in str(e.value) and "b.jpg" not in str(e.value).split(":")[-1]
    check_one_person([("a.jpg", vec(0)), ("b.jpg", vec(0.5))], threshold=0.6)


def test_a_new_photo_far_from_the_stored_templates_is_refused() -> None:
    with pytest.raises(EnrollError, match=r"stored photo 1 ~ new\.jpg: 0\.900"):
        check_one_person(
            [("new.jpg", vec(0.9))], threshold=0.6, existing=[("stored photo 1", vec(0))]
        )


def test_a_photo_closer_to_another_user_than_to_its_own_is_refused() -> None:
    others = gallery([(2, vec(0.75, 0.1, 0.45)), (3, vec(-3))])
    # b is within the threshold of a (0.559) but 0.224 from user 22 Bo; a is 0.68 from Bo
    with pytest.raises(EnrollError, match=r"b\.jpg is closer to user 22 Bo \(distance 0\.224\)"):
        check_one_person([("a.jpg", vec(0.25)), ("b.jpg", vec(0.75, 0.0, 0.25))], threshold=0.6,
                         others=others)  # fmt: skip
    # closer to its own than to anyone else: accepted
    check_one_person([("a.jpg", vec(0.25)), ("b.jpg", vec(0.3))], threshold=0.6, others=others)


def test_an_only_photo_within_the_threshold_of_another_user_is_refused() -> None:
    others = gallery([(1, vec(0.5))])
    with pytest.raises(EnrollError, match=r"x\.jpg matches user 11 Ada \(distance 0\.400"):
        check_one_person([("x.jpg", vec(0.1))], threshold=0.6, others=others)
    check_one_person([("x.jpg", vec(-0.2))], threshold=0.6, others=others)  # 0.7 away


def test_photo_count_is_one_to_five_counting_stored_ones() -> None:
    with pytest.raises(EnrollError, match="at least one photo"):
        check_photo_count(0)
    check_photo_count(5)
    with pytest.raises(EnrollError, match="6 new photo"):
        check_photo_count(6)
    with pytest.raises(EnrollError, match="2 new photo.*already has 4"):
        check_photo_count(2, 4)
    check_photo_count(1, 4)


def test_security_margin_is_the_nearest_other_users_template() -> None:
    g = gallery([(1, vec(0)), (1, vec(0.1)), (2, vec(0.8)), (3, vec(-0.5))])
    m = security_margins(g, [1, 2, 3])
    assert m[1] == (pytest.approx(0.5), 3)
    assert m[2] == (pytest.approx(0.7), 1)
    assert m[3] == (pytest.approx(0.5), 1)
    assert security_margins(gallery([(1, vec(0))]), [1]) == {}


def test_the_store_refuses_a_sixth_template_on_any_orm_write(db) -> None:
    from sqlalchemy import func, select

    from appliance.store.limits import TemplateLimitError
    from appliance.store.models import FaceTemplate, User

    def tmpl() -> FaceTemplate:
        return FaceTemplate(encoding=FaceTemplate.pack(vec(0.1)), quality=1.0)

    with (
        pytest.raises(TemplateLimitError, match="a new user with 6 face templates"),
        db.session() as s,
    ):
        s.add(User(number=1, name="A", pin_hash="x", templates=[tmpl() for _ in range(6)]))
    with db.session() as s:
        user = User(number=1, name="A", pin_hash="x", templates=[tmpl() for _ in range(5)])
        s.add(user)
    with pytest.raises(TemplateLimitError, match=r"would have 6 face templates"), db.session() as s:
        s.add(FaceTemplate(user_id=user.id, encoding=FaceTemplate.pack(vec(0)), quality=1.0))
    with db.session() as s:
        assert s.scalar(select(func.count(FaceTemplate.id))) == 5
        # replacing one in the same transaction stays within the limit
        s.delete(s.scalars(select(FaceTemplate)).first())
        s.add(FaceTemplate(user_id=user.id, encoding=FaceTemplate.pack(vec(0)), quality=1.0))
    with db.session() as s:
        assert s.scalar(select(func.count(FaceTemplate.id))) == 5
