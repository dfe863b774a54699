from pathlib import Path

from alignslm_eval.evaluate.world import World
from alignslm_eval.io.rank_files import every_file, own_file, rank_files


def test_each_rank_has_a_file_of_its_own_and_readers_find_all_whatever_world_size_wrote_them(tmp_path: Path) -> None:
    main = tmp_path / "task-key.jsonl"
    ranks = [World(rank=r, size=3).own_file(main) for r in range(3)]
    assert World().own_file(main) == main == own_file(main, 0, 1)
    assert [p.name for p in ranks] == ["task-key.rank0.jsonl", "task-key.rank1.jsonl", "task-key.rank2.jsonl"]
    assert every_file(main) == [] and rank_files(main) == []
    for path in [*ranks, tmp_path / "task-other.rank0.jsonl", tmp_path / "task-key.rank0.sqlite"]:
        path.write_text("")
    assert every_file(main) == ranks  # the lone process's file is listed only once it exists
    main.write_text("")
    assert every_file(main) == [main, *ranks]


def test_a_stem_with_glob_characters_matches_only_its_own_files(tmp_path: Path) -> None:
    main = tmp_path / "task[1]-key.jsonl"
    mine, other = own_file(main, 1, 2), tmp_path / "task1-key.rank0.jsonl"
    mine.write_text("")
    other.write_text("")
    assert every_file(main) == [mine]
