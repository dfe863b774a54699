import math

import pytest

from alignslm_eval.scoring.choice import likelihood_choice, mean_metric


@pytest.mark.parametrize(
    "scores,positive,expected",
    [([-1.0, -2.0], 0, 1.0), ([-2.0, -1.0], 0, 0.0), ([-1.0, -1.0], 0, 0.5), ([-3.0, -1.0, -1.0], 1, 0.5),
     ([-1.0, -1.0, -1.0], 0, 1 / 3), ([-1.0, -5.0, -0.5], 0, 0.0)],
)
def test_likelihood_choice(scores, positive, expected):
    assert likelihood_choice(scores, positive) == pytest.approx(expected)


def test_mean_metric():
    m = mean_metric([1, 0, 1, 1])
    assert m.value == 0.75 and m.n == 4
    assert m.stderr == pytest.approx(math.sqrt(0.25 / 4))
    assert math.isnan(mean_metric([]).value) and math.isnan(mean_metric([1.0]).stderr)
