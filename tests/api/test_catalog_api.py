"""The catalog: what an app needs to build its request form, in the reader's language."""

from __future__ import annotations

from typing import Any

from service.models import NeedKind, Skill


def test_every_kind_and_skill_comes_with_its_name_in_english_and_chinese(client: Any, tokens: Any) -> None:
    body = client.get("/api/v1/catalog", headers=tokens.intake).get_json()

    labels = {kind["name"]: kind["labels"] for kind in body["kinds"]}
    assert set(labels) == {k.value for k in NeedKind}
    assert labels["water_delivery"] == {"en": "water delivery", "zh": "送水"}
    assert all(label["en"] and label["zh"] for label in labels.values())
    assert set(body["skill_labels"]) == {s.value for s in Skill} == set(body["skills"])
    assert body["skill_labels"]["heavy_lifting"] == {"en": "heavy lifting", "zh": "搬运"}
