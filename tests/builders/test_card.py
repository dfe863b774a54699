import json

import pytest

from alignslm_eval.builders.card import CARD_JSON, CARD_MD, card_entry, update_card
from alignslm_eval.builders.tts import Voice, default_tts
from alignslm_eval.io.errors import UserError


def entry(source, seed):
    return card_entry("pairs", default_tts(), [source], [Voice.parse("en-us+f3")], seed, layout="x/<filename>.wav",
                      options={"limit": None}, counts={"pairs": 1, "by_kind": {"a": 1}})


def test_builds_share_the_card_and_replace_only_their_entry(tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_text("positive,negative\na b,b a\n", encoding="utf-8")
    update_card(tmp_path, "second", entry(source, 0))
    update_card(tmp_path, "first", entry(source, 0))
    path = update_card(tmp_path, "second", entry(source, 5))
    card = json.loads(path.read_text(encoding="utf-8"))
    assert path == tmp_path / CARD_JSON and list(card["benchmarks"]) == ["first", "second"]
    assert card["benchmarks"]["first"]["seed"] == 0 and card["benchmarks"]["second"]["seed"] == 5
    assert card["benchmarks"]["first"]["sources"][0]["file"] == "pairs.csv"
    text = (tmp_path / CARD_MD).read_text(encoding="utf-8")
    assert text.index("## first (pairs)") < text.index("## second (pairs)") and "  - by_kind: a 1" in text


def test_unreadable_card_is_named(tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_text("positive,negative\na b,b a\n", encoding="utf-8")
    (tmp_path / CARD_JSON).write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match=r"dataset_card\.json: not valid JSON"):
        update_card(tmp_path, "key", entry(source, 0))
    (tmp_path / CARD_JSON).write_text("[]", encoding="utf-8")
    with pytest.raises(UserError, match="not an alignslm dataset card"):
        update_card(tmp_path, "key", entry(source, 0))
