import threading

import pytest

from alignslm_eval.io.atomic import replacing, write_new, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.json"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path):
    target = tmp_path / "out.wav"
    with replacing(target) as first, replacing(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("a")
        second.write_text("b")
    assert target.read_text() == "a"  # the outer block ends last: its file stands, whole


def test_new_files_never_replace_one_another_even_when_written_at_once(tmp_path):
    (tmp_path / "r.json").write_text("earlier run\n")
    names = [tmp_path / "r.json", *(tmp_path / f"r_{n}.json" for n in range(2, 20))]
    written = []
    threads = [threading.Thread(target=lambda i=i: written.append(write_new(names, f"run {i}\n"))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (tmp_path / "r.json").read_text() == "earlier run\n"
    assert len(set(written)) == 8 and sorted(p.read_text() for p in written) == [f"run {i}\n" for i in range(8)]
    assert not list(tmp_path.glob(".*.tmp"))


def test_without_hard_links_a_name_is_still_taken_only_once(tmp_path, monkeypatch):
    import os

    def no_links(src, dst):
        raise PermissionError("this file system has no hard links")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "r.json").write_text("earlier run\n")
    path = write_new([tmp_path / "r.json", tmp_path / "r_2.json"], "new run\n")
    assert path.name == "r_2.json" and path.read_text() == "new run\n"
    assert (tmp_path / "r.json").read_text() == "earlier run\n" and not list(tmp_path.glob(".*.tmp"))
