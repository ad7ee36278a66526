"""The recommender model: quality against baselines, closed forms, picks, explanations."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recommender import fit as fitting
from recommender.fit import fit_model
from recommender.linalg import top_n
from recommender.model import RecommenderModel, UserProfile
from recommender.params import ModelParams
from recommender.ranking import interaction_weight
from recommender.rating import BIAS_SWEEPS, fit_biases
from tests.helpers import ratings_of
from tests.synthetic_ratings import SyntheticRatings, synthetic_ratings


@pytest.fixture(scope="module")
def data() -> SyntheticRatings:
    return synthetic_ratings(seed=0)


@pytest.fixture(scope="module")
def model(data: SyntheticRatings) -> RecommenderModel:
    return fit_model(*data)


def first_stage_order(model: RecommenderModel, data: SyntheticRatings, user: int
                      ) -> tuple[UserProfile, np.ndarray]:
    """The user folded in, and every film they have not rated in the first stage's order."""
    items, ratings = ratings_of(data, user)
    profile = model.fold_in(items, ratings)
    scores = model.rank_scores(profile).astype(np.float64)
    scores[items] = -np.inf
    return profile, top_n(scores, data.n_films)


# --- quality -----------------------------------------------------------------------

def test_model_beats_biases_at_rating_and_popularity_at_ranking(data: SyntheticRatings) -> None:
    rng = np.random.default_rng(1)
    held_out = rng.choice(data.n_users, 60, replace=False)
    train = ~np.isin(data.user_index, held_out)
    fitted = fit_model(data.user_index[train], data.film_index[train],
                       data.ratings[train], data.n_users, data.n_films)
    mean, _, item_bias = fit_biases(data.user_index[train], data.film_index[train],
                                    data.ratings[train], data.n_users, data.n_films,
                                    user_reg=2.0, film_reg=2.0)
    model_errors, bias_errors, model_recall, popular_recall = [], [], [], []
    for user in held_out:
        items, ratings = ratings_of(data, int(user))
        order = rng.permutation(len(items))
        cut = int(0.8 * len(items))
        known, hidden = order[:cut], order[cut:]
        profile = fitted.fold_in(items[known], ratings[known])
        model_errors.append(fitted.predict(profile, items[hidden]) - ratings[hidden])
        user_bias = (ratings[known] - mean - item_bias[items[known]]).sum() / (cut + 2.0)
        bias_errors.append(np.clip(mean + user_bias + item_bias[items[hidden]], 1, 10)
                           - ratings[hidden])
        relevant = items[hidden][ratings[hidden] >= 8]
        if len(relevant):
            model_top = fitted.rank(profile, 20)
            popularity = fitted.popularity_scores().astype(np.float64)
            popularity[items[known]] = -np.inf
            popular_top = np.argsort(-popularity, kind="stable")[:20]
            model_recall.append(np.isin(relevant, model_top).mean())
            popular_recall.append(np.isin(relevant, popular_top).mean())
    model_rmse = np.sqrt(np.mean(np.concatenate(model_errors) ** 2))
    bias_rmse = np.sqrt(np.mean(np.concatenate(bias_errors) ** 2))
    assert model_rmse < 0.9 * bias_rmse
    assert np.mean(model_recall) > 1.15 * np.mean(popular_recall)


# --- closed forms ----------------------------------------------------------------------

def test_folding_in_a_training_user_recovers_their_fitted_weights(
        data: SyntheticRatings, model: RecommenderModel) -> None:
    for user in (0, 17, 123):
        items, ratings = ratings_of(data, user)
        profile = model.fold_in(items, ratings)
        np.testing.assert_allclose(profile.rating_weights, model.user_rating_weights[user],
                                   rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(profile.ranking_embedding,
                                   model.user_ranking_embeddings[user], rtol=1e-4, atol=1e-5)
        films = np.arange(data.n_films)
        np.testing.assert_allclose(model.predict(profile, films),
                                   model.predict_pairs(np.full(data.n_films, user), films),
                                   atol=1e-3)


def test_ranking_scores_are_ease_on_the_exact_low_rank_plus_diagonal_gram(
        data: SyntheticRatings) -> None:
    # Enough power iterations for the randomized SVD to match the dense one.
    params = ModelParams(ranking_factors=3, ranking_tail_factors=4, ranking_tail_weight=0.25,
                         svd_power_iterations=12, rerank_candidates=0)
    fitted = fit_model(*data, params=params)
    assert fitted.ranking_tail_factors.shape == (data.n_films, 4)
    counts = np.bincount(data.film_index, minlength=data.n_films)
    scale = np.maximum(counts, 1) ** -params.popularity_damping
    dense = np.zeros((data.n_users, data.n_films))
    dense[data.user_index, data.film_index] = (interaction_weight(data.ratings)
                                               * scale[data.film_index])
    _, singular, right = np.linalg.svd(dense, full_matrices=False)
    head = right[:3].T * singular[:3]
    tail = right[3:7].T * singular[3:7]
    gram = dense.T @ dense
    low_rank = head @ head.T + 0.25 * tail @ tail.T
    # The Gram's top singular part, its tail at a quarter of its weight, the diagonal they
    # leave over and the ridge, inverted densely.
    approximate = low_rank + np.diag(np.diag(gram) - np.diag(low_rank)
                                     + params.ranking_reg * np.diag(gram).mean())
    inverse = np.linalg.inv(approximate)
    for user in (3, 50):
        items, ratings = ratings_of(data, user)
        unseen = np.setdiff1d(np.arange(data.n_films), items)
        expected = -(dense[user] @ inverse)[unseen] / np.diag(inverse)[unseen]
        scores = fitted.rank_scores(fitted.fold_in(items, ratings))[unseen]
        assert np.abs(scores - expected).max() < 1e-3 * np.abs(expected).max()
    # Without the tail, the scores are those of another Gram.
    plain = fit_model(*data, params=replace(params, ranking_tail_factors=0))
    assert plain.ranking_tail_factors.shape == (data.n_films, 0)
    plain_scores = plain.rank_scores(plain.fold_in(*ratings_of(data, 3)))
    assert np.abs(plain_scores - fitted.rank_scores(fitted.fold_in(*ratings_of(data, 3)))
                  ).max() > 1e-2 * np.abs(plain_scores).max()


def test_predictions_stay_on_the_rating_scale(data: SyntheticRatings,
                                              model: RecommenderModel) -> None:
    profile = model.fold_in(np.arange(10), np.full(10, 10))
    predicted = model.predict(profile, np.arange(data.n_films))
    assert predicted.dtype == np.float32
    assert predicted.min() >= 1 and predicted.max() <= 10


def test_a_harsh_user_gets_lower_stars_than_a_generous_one(model: RecommenderModel) -> None:
    films = np.arange(40)
    harsh = model.fold_in(films, np.full(40, 3))
    generous = model.fold_in(films, np.full(40, 9))
    others = np.arange(40, 80)
    assert model.predict(harsh, others).mean() + 3 < model.predict(generous, others).mean()


# --- ranking and explanations --------------------------------------------------------

def test_rank_leaves_out_rated_and_watched_films(data: SyntheticRatings,
                                                 model: RecommenderModel) -> None:
    items, ratings = ratings_of(data, 5)
    watched = np.array([i for i in range(data.n_films) if i not in set(items)][:15])
    profile = model.fold_in(items, ratings, watched_films=watched)
    ranked = model.rank(profile, 30)
    assert len(ranked) == 30
    assert not np.isin(ranked, items).any() and not np.isin(ranked, watched).any()
    everything = model.rank(profile, data.n_films)
    assert len(everything) == data.n_films - len(set(items)) - len(watched)
    first_stage_only = fit_model(*data, params=ModelParams(rerank_candidates=0))
    plain = first_stage_only.fold_in(items, ratings, watched_films=watched)
    assert np.all(np.diff(first_stage_only.rank_scores(plain)[first_stage_only.rank(plain, 30)])
                  <= 0)


def test_the_second_stage_reorders_the_first_stages_best_and_is_learned(
        data: SyntheticRatings, model: RecommenderModel) -> None:
    small = fit_model(*data, params=ModelParams(rerank_candidates=40))
    small_profile, order = first_stage_order(small, data, 8)
    ranked = small.rank(small_profile, 10)
    assert np.isin(ranked, order[:40]).all()
    assert not np.array_equal(ranked, order[:10])  # it does reorder
    assert not np.allclose(model.second_stage.weights[1:], 0.0)


def test_filters_apply_before_the_second_stage_chooses(data: SyntheticRatings) -> None:
    model = fit_model(*data, params=ModelParams(rerank_candidates=40))
    items, ratings = ratings_of(data, 9)
    profile = model.fold_in(items, ratings)
    unfiltered = model.rank(profile, 60)
    allowed = np.ones(data.n_films, dtype=bool)
    allowed[unfiltered] = False  # the whole first choice is filtered out
    ranked = model.rank(profile, 25, allowed=allowed)
    assert len(ranked) == 25 and allowed[ranked].all()


def test_a_boosted_film_moves_up_even_from_far_down_the_first_stage(
        data: SyntheticRatings) -> None:
    model = fit_model(*data, params=ModelParams(rerank_candidates=20))
    profile, order = first_stage_order(model, data, 10)
    far = order[70]  # well outside the 20 candidates
    candidates, features, on_merit = model.candidate_features(profile, 20,
                                                              boosted=np.array([far]))
    assert on_merit == 20 and candidates[-1] == far
    assert np.log1p(70) == pytest.approx(features[-1, 1])
    assert far not in model.rank(profile, 20)
    plain = model.rank(profile, 100).tolist()
    boosted = model.rank(profile, 100, boosted=np.array([far])).tolist()
    assert boosted.index(far) < plain.index(far)


def test_a_long_watchlist_does_not_widen_its_own_boost(data: SyntheticRatings) -> None:
    model = fit_model(*data, params=ModelParams(rerank_candidates=40))
    profile, order = first_stage_order(model, data, 12)
    film, others = order[70], order[80:]  # all behind the 60 films chosen on merit
    alone = model.rank(profile, 60, boosted=np.array([film])).tolist()
    crowded = [pick for pick in model.rank(profile, 60,
                                           boosted=np.concatenate([[film], others])).tolist()
               if pick not in set(others.tolist())]
    assert film in alone and crowded.index(film) == alone.index(film)


def test_the_second_stage_learns_only_from_users_left_out_of_its_fit(
        data: SyntheticRatings, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    watched_users = np.repeat(np.arange(data.n_users), 3)
    watched_items = np.concatenate([
        rng.choice(np.setdiff1d(np.arange(data.n_films), ratings_of(data, user)[0]), 3,
                   replace=False) for user in range(data.n_users)])
    fits = []
    real = fitting.fit_both_models

    def record(user_index, film_index, ratings, n_users, n_films, params, seen_users,
               seen_films, progress=None):
        fits.append((set(np.unique(user_index).tolist()), set(seen_users.tolist())))
        return real(user_index, film_index, ratings, n_users, n_films, params,
                    seen_users, seen_films, progress)

    monkeypatch.setattr(fitting, "fit_both_models", record)
    folded = []
    real_fold_in = RecommenderModel.fold_in
    monkeypatch.setattr(RecommenderModel, "fold_in", lambda self, items, ratings, watched=None: (
        folded.append((items, watched)), real_fold_in(self, items, ratings, watched))[1])
    fit_model(*data, watched=(watched_users, watched_items))
    (everyone, everyone_watched), (inner_fit, inner_watched) = fits
    left_out = everyone - inner_fit
    assert len(left_out) == data.n_users // 5 and everyone_watched == everyone
    assert not left_out & inner_watched  # nor their films watched without a rating
    assert len(folded) == len(left_out)
    for items, watched in folded:  # a left-out user, from 80% of their ratings, and all
        owner = [user for user in left_out if np.isin(items, ratings_of(data, user)[0]).all()]
        assert owner and len(items) == int(0.8 * len(ratings_of(data, owner[0])[0]))
        np.testing.assert_array_equal(np.sort(watched),
                                      np.sort(watched_items[watched_users == owner[0]]))


def test_too_few_users_keep_the_first_stages_order(data: SyntheticRatings) -> None:
    rows = data.user_index < 60  # 60 users: 12 inner ones, too few to learn from
    tiny = fit_model(data.user_index[rows], data.film_index[rows],
                     data.ratings[rows], 60, data.n_films)
    profile, order = first_stage_order(tiny, data, 3)
    np.testing.assert_array_equal(tiny.rank(profile, 15), order[:15])


def test_watched_films_count_towards_the_ranking_but_not_the_stars(
        data: SyntheticRatings, model: RecommenderModel) -> None:
    items, ratings = ratings_of(data, 8)
    watched = np.setdiff1d(np.arange(data.n_films), items)[:20]
    plain = model.fold_in(items, ratings)
    with_watched = model.fold_in(items, ratings, watched_films=np.concatenate([watched,
                                                                              items[:3]]))
    np.testing.assert_array_equal(with_watched.watched_films, watched)
    assert not np.allclose(plain.ranking_embedding, with_watched.ranking_embedding)
    assert with_watched.n_ratings == plain.n_ratings


def test_watched_pairs_enter_fitting_as_fold_in_counts_them(data: SyntheticRatings,
                                                            model: RecommenderModel) -> None:
    rng = np.random.default_rng(5)
    watched_users, watched_items = [], []
    for user in range(data.n_users):
        unrated = np.setdiff1d(np.arange(data.n_films), ratings_of(data, user)[0])
        chosen = rng.choice(unrated, size=min(6, len(unrated)), replace=False)
        watched_users += [user] * len(chosen)
        watched_items += chosen.tolist()
    watched_users, watched_items = np.array(watched_users), np.array(watched_items)
    fitted = fit_model(*data, watched=(watched_users, watched_items))
    assert not np.allclose(np.abs(fitted.item_ranking_factors),
                           np.abs(model.item_ranking_factors), atol=1e-3)
    for user in (0, 17, 123):
        items, ratings = ratings_of(data, user)
        profile = fitted.fold_in(items, ratings, watched_items[watched_users == user])
        np.testing.assert_allclose(profile.ranking_embedding,
                                   fitted.user_ranking_embeddings[user], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(profile.rating_weights, fitted.user_rating_weights[user],
                                   rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError):
        fit_model(*data, watched=(watched_users, watched_items[:-1]))
    with pytest.raises(ValueError):
        fit_model(*data, watched=(watched_users, watched_items + data.n_films))


def test_explanations_are_the_most_similar_loved_films_that_support_the_pick(
        data: SyntheticRatings, model: RecommenderModel) -> None:
    items, ratings = ratings_of(data, 11)
    profile = model.fold_in(items, ratings)
    rated = dict(zip(items.tolist(), ratings.tolist()))
    factors = model.item_ranking_factors
    unit = factors / np.linalg.norm(factors, axis=1, keepdims=True)
    liked = items[ratings >= 8]
    # What each loved film adds to every score: the score falls by it when the film goes.
    full = model.rank_scores(profile)
    added = {int(gone): full - model.rank_scores(model.fold_in(items[items != gone],
                                                               ratings[items != gone]))
             for gone in liked}
    explained = set()
    for film in model.rank(profile, 10):
        reasons = model.explain(profile, int(film))
        assert 1 <= len(reasons) <= 3
        assert all(rated[reason] >= 8 for reason in reasons)
        supporting = np.array([gone for gone in liked if added[int(gone)][film] > 0])
        expected = supporting[np.argsort(-(unit[supporting] @ unit[film]), kind="stable")]
        assert list(reasons) == expected[:len(reasons)].tolist()
        explained.add(reasons)
    assert len(explained) >= 5  # not the same few films for every pick


def test_contributions_add_up_to_the_ranking_score(data: SyntheticRatings,
                                                   model: RecommenderModel) -> None:
    items, ratings = ratings_of(data, 2)
    profile = model.fold_in(items, ratings)
    film = int(model.rank(profile, 1)[0])
    # Every component counts: the full factors and the tail.
    factors = np.hstack([model.item_ranking_factors, model.ranking_tail_factors])
    assert model.ranking_tail_factors.shape[1] > 0
    contributions = (interaction_weight(ratings) * model.item_scale[items]
                     * model.ranking_query_scale[items] * model.ranking_output_scale[film]
                     * (factors[items] @ model.ranking_mixing @ factors[film]))
    assert contributions.sum() == pytest.approx(float(model.rank_scores(profile)[film]),
                                                rel=1e-4)


def test_a_strict_rater_is_explained_by_their_best_films_but_never_by_low_ones(
        model: RecommenderModel) -> None:
    strict = model.fold_in(np.arange(12), np.array([3, 4, 5, 7, 7, 5, 4, 3, 2, 7, 5, 4]))
    reasons = [model.explain(strict, int(film)) for film in model.rank(strict, 5)]
    assert any(reasons) and all(set(found) <= {3, 4, 9} for found in reasons)
    # Nothing above three stars: "because you rated X highly" would be false.
    harsh = model.fold_in(np.arange(12), np.array([3, 4, 5, 6, 6, 5, 4, 3, 2, 6, 5, 4]))
    assert all(model.explain(harsh, int(film)) == () for film in model.rank(harsh, 5))


def test_cold_start_below_the_threshold(model: RecommenderModel) -> None:
    assert model.params.cold_start_threshold == 5
    assert model.is_cold(model.fold_in(np.arange(4), np.full(4, 8)))
    assert not model.is_cold(model.fold_in(np.arange(5), np.full(5, 8)))
    assert model.is_cold(model.fold_in(np.array([1, 1, 1, 1, 1, 2]), np.full(6, 8)))
    empty = model.fold_in(np.empty(0, dtype=np.int64), np.empty(0))
    assert model.is_cold(empty) and model.explain(empty, 0) == ()


def test_a_cold_profile_is_picked_the_most_loved_films_it_has_not_seen(
        model: RecommenderModel) -> None:
    loved = model.popularity_scores().astype(np.float64)
    most_loved = np.argsort(-loved, kind="stable")
    rated, watched, filtered = most_loved[:2], most_loved[2:3], most_loved[3]
    allowed = np.ones(model.n_films, dtype=bool)
    allowed[filtered] = False
    cold = model.fold_in(rated, np.full(2, 9), watched_films=watched)
    picks = model.pick(cold, 5, allowed=allowed)
    assert picks.cold_start
    eligible = allowed.copy()
    eligible[most_loved[:3]] = False
    assert np.all(eligible[picks.films])
    np.testing.assert_array_equal(loved[picks.films], np.sort(loved[eligible])[::-1][:5])
    # A boosted film (the watchlist) moves up by two standard deviations of those scores.
    far = most_loved[40]
    scores = np.where(eligible, loved, -np.inf)
    scores[far] += 2.0 * float(np.std(loved[eligible]))
    boosted = model.pick(cold, 5, allowed=allowed, boosted=np.array([far]))
    assert boosted.cold_start and far in boosted.films
    np.testing.assert_array_equal(boosted.films, top_n(scores, 5))


def test_a_warm_profile_is_picked_its_ranking(data: SyntheticRatings,
                                               model: RecommenderModel) -> None:
    profile = model.fold_in(*ratings_of(data, 4))
    far = first_stage_order(model, data, 4)[1][-1]
    picks = model.pick(profile, 10, boosted=np.array([far]))
    assert not picks.cold_start
    np.testing.assert_array_equal(picks.films, model.rank(profile, 10, boosted=np.array([far])))


def test_popularity_counts_ratings_of_eight_and_up(data: SyntheticRatings,
                                                   model: RecommenderModel) -> None:
    expected = np.bincount(data.film_index[data.ratings >= 8], minlength=data.n_films)
    np.testing.assert_array_equal(model.popularity_scores(), expected)


def test_fold_in_keeps_the_last_of_repeated_ratings(model: RecommenderModel) -> None:
    profile = model.fold_in(np.array([4, 7, 4]), np.array([2, 9, 10]))
    assert dict(zip(profile.rated_films.tolist(), profile.ratings.tolist())) == {4: 10, 7: 9}


@pytest.mark.parametrize("items, ratings", [
    (np.array([0, 500]), np.array([5, 5])),
    (np.array([-1, 2]), np.array([5, 5])),
    (np.array([0, 1]), np.array([5, 11])),
    (np.array([0, 1]), np.array([0, 5])),
    (np.array([0, 1]), np.array([5.0, np.nan])),
    (np.array([0.5, 1.0]), np.array([5, 5])),
    (np.array([0, 1, 2]), np.array([5, 5])),
])
def test_fold_in_rejects_invalid_input(model: RecommenderModel, items: np.ndarray,
                                       ratings: np.ndarray) -> None:
    with pytest.raises(ValueError):
        model.fold_in(items, ratings)


def test_fit_rejects_invalid_input(data: SyntheticRatings) -> None:
    with pytest.raises(ValueError):
        fit_model(data.user_index, data.film_index, data.ratings, data.n_users - 1,
                  data.n_films)
    with pytest.raises(ValueError):
        fit_model(data.user_index[:-1], data.film_index, data.ratings,
                  data.n_users, data.n_films)
    with pytest.raises(ValueError):
        fit_model(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0),
                  data.n_users, data.n_films)
    with pytest.raises(ValueError):
        ModelParams(ranking_factors=0)


def test_fit_is_deterministic_and_handles_users_and_films_without_ratings() -> None:
    data = synthetic_ratings(seed=3, n_users=120, n_films=90)
    first = fit_model(data.user_index, data.film_index, data.ratings,
                      data.n_users + 5, data.n_films + 7)
    second = fit_model(data.user_index, data.film_index, data.ratings,
                       data.n_users + 5, data.n_films + 7)
    np.testing.assert_array_equal(first.item_ranking_factors, second.item_ranking_factors)
    np.testing.assert_array_equal(first.user_rating_weights, second.user_rating_weights)
    new_user, new_film = data.n_users + 2, data.n_films + 3
    assert first.predict_pairs(np.array([new_user]), np.array([0]))[0] == pytest.approx(
        first.global_mean + first.item_bias[0], abs=0.3)
    assert np.isfinite(first.predict_pairs(np.array([0]), np.array([new_film]))).all()
    assert first.popularity_scores()[new_film] == 0


def test_top_n_takes_the_best_finite_scores_in_order() -> None:
    scores = np.array([0.5, -np.inf, 2.0, 1.0, 2.0, -np.inf])
    assert top_n(scores, 3).tolist() == [2, 4, 3]  # a tie keeps index order
    assert top_n(scores, 10).tolist() == [2, 4, 3, 0]
    assert top_n(np.full(3, -np.inf), 2).tolist() == []


def test_ratings_without_structure_never_turn_the_stars_against_a_films_fit() -> None:
    """On random ratings the least-squares coefficient on the ranking score came out
    negative: the film a user's taste fits best was then predicted lowest."""
    rng = np.random.default_rng(0)
    pairs = np.unique(np.column_stack([rng.integers(0, 30, 400), rng.integers(0, 40, 400)]),
                      axis=0)
    model = fit_model(pairs[:, 0], pairs[:, 1], rng.integers(1, 11, len(pairs)),
                      30, 40)
    assert model.affinity_coefficient == 0.0


def test_biases_are_the_alternating_shrunken_means_of_the_residuals() -> None:
    rng = np.random.default_rng(5)
    n_users, n_films = 50, 30
    users, films = rng.integers(0, n_users, 2000), rng.integers(0, n_films, 2000)
    ratings = rng.integers(1, 11, 2000).astype(np.float32)
    mean, user_bias, film_bias = fit_biases(users, films, ratings, n_users, n_films,
                                            user_reg=3.0, film_reg=7.0)
    # The definition, one pass over every rating per half sweep.
    expected_users, expected_films = np.zeros(n_users), np.zeros(n_films)
    for _ in range(BIAS_SWEEPS):
        expected_films = (np.bincount(films, ratings - ratings.mean() - expected_users[users],
                                      n_films) / (np.bincount(films, minlength=n_films) + 7.0))
        expected_users = (np.bincount(users, ratings - ratings.mean() - expected_films[films],
                                      n_users) / (np.bincount(users, minlength=n_users) + 3.0))
    assert mean == pytest.approx(ratings.mean())
    np.testing.assert_allclose(film_bias, expected_films, atol=1e-5)
    np.testing.assert_allclose(user_bias, expected_users, atol=1e-5)
