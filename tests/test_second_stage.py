"""The second stage's listwise weights, on feature lists whose loved films are known."""
from __future__ import annotations

import numpy as np

from recommender.second_stage import FEATURES, LinearStage, learn_weights


def _lists(rng: np.random.Generator, n_lists: int, telling: int
           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate lists whose loved films are those highest on feature `telling`, with
    feature 0 (the first stage's score) only loosely related to it."""
    lists = []
    for _ in range(n_lists):
        features = rng.normal(size=(50, len(FEATURES)))
        features[:, 0] = 0.3 * features[:, telling] + rng.normal(size=50)
        lists.append((features, np.argsort(-features[:, telling])[:3]))
    return lists


def _hits_in_top(stage: LinearStage, lists: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(np.mean([np.isin(np.argsort(-stage.scores(features))[:5], loved).mean()
                          for features, loved in lists]))


def test_weights_learn_which_feature_tells_loved_films_apart() -> None:
    rng = np.random.default_rng(0)
    stage = learn_weights(_lists(rng, 200, telling=3), l2=0.01)
    assert int(np.argmax(stage.weights)) == 3
    fresh = _lists(rng, 100, telling=3)
    assert _hits_in_top(stage, fresh) > 2 * _hits_in_top(LinearStage.first_stage_order(), fresh)


def test_the_penalty_shrinks_the_weights() -> None:
    lists = _lists(np.random.default_rng(1), 100, telling=5)
    assert (np.linalg.norm(learn_weights(lists, l2=1.0).weights)
            < np.linalg.norm(learn_weights(lists, l2=0.001).weights))


def test_no_loved_film_anywhere_keeps_the_first_stages_order() -> None:
    lists = [(features, np.empty(0, np.int64))
             for features, _ in _lists(np.random.default_rng(2), 10, telling=1)]
    stage = learn_weights(lists, l2=0.01)
    features = lists[0][0]
    np.testing.assert_array_equal(np.argsort(-stage.scores(features)),
                                  np.argsort(-features[:, 0]))


def test_weights_that_do_not_converge_keep_the_first_stages_order() -> None:
    lists = _lists(np.random.default_rng(3), 20, telling=2)
    lists[4][0][7, 5] = np.inf  # one broken feature value makes the loss undefined
    with np.errstate(invalid="ignore"):
        stage = learn_weights(lists, l2=0.01)
    np.testing.assert_array_equal(stage.weights, LinearStage.first_stage_order().weights)


def test_newtons_method_reaches_the_optimum() -> None:
    """At the weights found, the loss's gradient vanishes: checked by finite differences
    of the loss written out here, independently of the solver."""
    lists = _lists(np.random.default_rng(4), 60, telling=6)
    l2 = 0.05
    stage = learn_weights(lists, l2)

    def loss(weights: np.ndarray) -> float:
        total = 0.0
        for features, loved in lists:
            scores = ((features - stage.mean) / stage.scale) @ weights
            log_normaliser = np.log(np.exp(scores - scores.max()).sum()) + scores.max()
            total -= np.mean(scores[loved] - log_normaliser) / len(lists)
        return total + l2 * weights @ weights

    for feature in range(len(FEATURES)):
        nudge = np.zeros(len(FEATURES))
        nudge[feature] = 1e-4
        slope = (loss(stage.weights + nudge) - loss(stage.weights - nudge)) / 2e-4
        assert abs(slope) < 1e-5
