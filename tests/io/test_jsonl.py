import json

from alignslm_eval.io.jsonl import keep_whole_lines, open_append, read_jsonl


def test_append_after_a_hard_kill_starts_a_new_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"a": 1}\n{"b": 2, "cut sh')  # a line cut short by a kill
    with open_append(log) as f:
        f.write('{"c": 3}\n')
    assert list(read_jsonl(log)) == [{"a": 1}, {"c": 3}]


def test_a_line_a_kill_cut_short_is_dropped_and_whole_lines_kept(tmp_path):
    log = tmp_path / "eval_log.jsonl"
    rows = [{"step": 4, "task": "sstorycloze", "value": 0.5}, {"step": 8, "task": "sstorycloze", "value": 0.6}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 12, "task": "sstor')
    keep_whole_lines(log)
    assert [json.loads(line) for line in log.read_text().splitlines()] == rows
    before = log.stat().st_mtime_ns
    keep_whole_lines(log)  # a whole log is left as it is
    assert log.stat().st_mtime_ns == before
