"""The judge answer cache: keyed by everything that decides an answer and nothing else, on by default under
$ALIGNSLM_CACHE, and a cache file that cannot be used is a one-line error keeping what it holds."""

from __future__ import annotations

import pytest

from alignslm_eval.scoring.judge.scorer import GPT4oScore
from tests.judge_server import JudgeServer, judge_server  # noqa: F401 (fixture)
from tests.scoring.judge.loopback import item, key, marked, options  # noqa: F401 (fixture)


def test_cache_key_covers_model_url_settings_and_prompt(judge_server, key, tmp_path):
    def key_of(**extra) -> str:
        with GPT4oScore.from_options(options(judge_server, tmp_path / "c", **extra)) as s:
            return s.cache_key(s.messages("a prompt", "a continuation"))

    base = key_of()
    assert key_of() == base
    assert key_of(judge_model="other") != base
    assert key_of(judge_base_url="http://127.0.0.1:1/v1") != base
    assert key_of(judge_temperature=0.7) != base
    assert key_of(judge_max_tokens=32) != base
    with GPT4oScore.from_options(options(judge_server, tmp_path / "c")) as s:
        assert s.cache_key(s.messages("a prompt", "another continuation")) != base
    # Transport settings do not change answers, so they do not change keys.
    assert key_of(judge_concurrency=1, judge_timeout_s=5) == base


def test_cache_can_be_switched_off_and_defaults_under_alignslm_cache(judge_server, key, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNSLM_CACHE", str(tmp_path / "home-cache"))
    opts = options(judge_server, tmp_path)
    del opts["judge_cache_dir"]
    with GPT4oScore.from_options(opts) as scorer:
        scorer.score([item(0, "x")])
    assert (tmp_path / "home-cache" / "judge" / "answers.sqlite").is_file()
    judge_server.reset_counts()
    with GPT4oScore.from_options({**opts, "judge_cache": False}) as scorer:
        scorer.score([item(0, "x")])
        scorer.score([item(0, "x")])
    assert judge_server.total == 2


def test_a_rotated_query_key_keeps_the_cache_key(key, tmp_path):
    with JudgeServer() as server:
        def key_of(query: str) -> str:
            with GPT4oScore.from_options(options(server, tmp_path / "cache",
                                                 judge_base_url=f"{server.base_url}?{query}")) as scorer:
                return scorer.cache_key(scorer.messages("a prompt", "a continuation"))

        assert key_of("api-key=sk-old-0123456") == key_of("api-key=sk-new-6543210")
        assert key_of("api-version=1") != key_of("api-version=2")


def test_a_judge_cache_that_cannot_be_used_is_a_one_line_error_keeping_what_it_holds(key, tmp_path, monkeypatch):
    import sqlite3

    from alignslm_eval.io.errors import UserError
    from alignslm_eval.scoring.judge.cache import AnswerCache

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "answers.sqlite").write_bytes(b"this is no SQLite database, just bytes " * 64)
    with JudgeServer() as server:
        with pytest.raises(UserError, match=r"broken/answers.sqlite: the judge answer cache cannot be opened \(file "
                                            r"is not a database\); .*--judge-cache-dir"):
            GPT4oScore.from_options(options(server, tmp_path / "broken"))

        # Another process holds the cache's write lock for longer than we wait: the answer cannot be stored.
        monkeypatch.setattr(AnswerCache, "LOCK_TIMEOUT_S", 0.2)
        with GPT4oScore.from_options(options(server, tmp_path / "cache")) as scorer:
            assert scorer.score([marked(0, "#first#")])[0].value == 3.0
            holder = sqlite3.connect(tmp_path / "cache" / "answers.sqlite")
            holder.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(UserError, match="answers.sqlite: the judge answer cache cannot be (read|written) "
                                                    r"\(database is locked\)"):
                    scorer.score([marked(1, "#second#")])
            finally:
                holder.rollback()
                holder.close()
        # What was committed before is still there.
        with GPT4oScore.from_options(options(server, tmp_path / "cache")) as scorer:
            server.reset_counts()
            assert scorer.score([marked(0, "#first#")])[0].value == 3.0 and server.total == 0


def test_each_rank_writes_a_cache_file_of_its_own_and_every_process_reads_them_all(tmp_path):
    from alignslm_eval.evaluate.world import World
    from alignslm_eval.scoring.judge.cache import AnswerCache

    ranks = [AnswerCache(tmp_path, World(rank=r, size=2, group=True)) for r in range(2)]
    ranks[0].put("k0", "\\boxed{1}", "m", None)
    ranks[1].put("k1", "\\boxed{2}", "m", None)
    for cache in ranks:
        cache.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.rank0.sqlite", "answers.rank1.sqlite"]
    alone = AnswerCache(tmp_path)  # a later run at another world size finds both ranks' answers
    assert alone.get_many(["k0", "k1", "k2"]) == {"k0": "\\boxed{1}", "k1": "\\boxed{2}"}
    alone.put("k2", "\\boxed{3}", "m", None)
    alone.close()
    assert (tmp_path / "answers.sqlite").is_file()
    rank1 = AnswerCache(tmp_path, World(rank=1, size=2, group=True))
    assert rank1.get_many(["k0", "k2"]) == {"k0": "\\boxed{1}", "k2": "\\boxed{3}"}
    rank1.close()
