import json

import pytest

from alignslm_eval.builders.inputs import header, read_rows, require_text, seeded_sample
from alignslm_eval.io.errors import UserError


def test_tab_separated_without_tsv_suffix_and_physical_line_numbers(tmp_path):
    source = tmp_path / "words.txt"
    source.write_text('word\tnote\nbrick\t"two\nlines"\n\t\nhouse\t x \n', encoding="utf-8")
    assert header(source) == ["word", "note"]
    rows = read_rows(source, ("word",), "a word list")
    # the blank row is skipped; the quoted field's newline does not shift later line numbers
    assert [(r.line, r.values) for r in rows] == [(3, {"word": "brick", "note": "two\nlines"}),
                                                  (5, {"word": "house", "note": "x"})]


def test_jsonl_splits_on_newlines_only(tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps({"a": "one\u2028two", "b": None}, ensure_ascii=False) + "\n\n" +
                      json.dumps({"a": 3, "b": "x"}) + "\n", encoding="utf-8")
    rows = read_rows(source, ("a", "b"), "a pairs file")
    assert [(r.line, r.values) for r in rows] == [(1, {"a": "one\u2028two", "b": ""}), (3, {"a": "3", "b": "x"})]
    with pytest.raises(UserError, match=r"pairs\.jsonl: line 1: empty 'b'"):
        require_text(source, rows[0], "b")


def test_seeded_sample_is_deterministic_and_keeps_order():
    items = list(range(100))
    chosen = seeded_sample(items, 10, "0|key")
    assert chosen == seeded_sample(items, 10, "0|key") == sorted(chosen) and len(chosen) == 10
    assert chosen != seeded_sample(items, 10, "1|key")
    assert seeded_sample(items, None, "k") == seeded_sample(items, 500, "k") == items
