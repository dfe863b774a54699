import numpy as np

from alignslm_eval.io.cache import UnitCache
from alignslm_eval.io.units import Units


def test_round_trip_and_separation_by_fingerprint(tmp_path):
    a = UnitCache(tmp_path, "tok-a")
    units = {f"h{i}": Units(np.arange(i + 1), np.full(i + 1, 2)) for i in range(700)}  # > one SQL chunk
    a.put_many(units)
    got = a.get_many(units)
    assert got.keys() == units.keys()
    assert got["h699"].units.tolist() == list(range(700)) and got["h3"].durations.tolist() == [2, 2, 2, 2]
    assert a.get("missing") is None
    a.close()
    # Reopened: still there (committed). Another tokenizer fingerprint sees nothing.
    assert UnitCache(tmp_path, "tok-a").get("h5").units.tolist() == list(range(6))
    assert UnitCache(tmp_path, "tok-b").get("h5") is None
