import json

from alignslm_train.callback import _drop_cut_lines


def test_a_line_a_kill_cut_short_is_dropped_and_whole_lines_kept(tmp_path):
    log = tmp_path / "eval_log.jsonl"
    rows = [{"step": 4, "task": "sstorycloze", "value": 0.5}, {"step": 8, "task": "sstorycloze", "value": 0.6}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 12, "task": "sstor')
    _drop_cut_lines(log)
    assert [json.loads(line) for line in log.read_text().splitlines()] == rows
    before = log.stat().st_mtime_ns
    _drop_cut_lines(log)  # a whole log is left as it is
    assert log.stat().st_mtime_ns == before
