"""The evaluation protocol: loader, metrics, the report, the command and the real sample."""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

import recommend
from errors import DatasetError, exit_code_for
from recommender import evaluation
from recommender.evaluation import (BIASES, GLOBAL_MEAN, MODEL, POPULARITY, RANKED_BY_STARS,
                                    EvaluationReport, evaluate, format_report,
                                    load_ratings_table)
from recommender.model import RecommenderModel
from tests.synthetic_ratings import synthetic_ratings

KAGGLE_CSV = """user_id,movie_id,rating_val
alice,heat,8
alice,alien,10
bob,heat,6
bob,up,
carol,alien,eleven
carol,up,7
alice,heat,9
dave,,5
"""


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return evaluate(*synthetic_ratings(seed=0), seed=0, holdout_users=60)


def test_loader_builds_dense_indices(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(KAGGLE_CSV)
    table = load_ratings_table(path)
    assert (table.n_users, table.n_films) == (3, 3)
    assert table.user_index.dtype == np.int32 and table.film_index.dtype == np.int32
    assert table.ratings.dtype == np.int8
    triples = sorted(zip(table.user_index.tolist(), table.film_index.tolist(),
                         table.ratings.tolist()))
    # Rows with no rating, a rating that is no number or no film are dropped and a repeated pair
    # keeps its last rating, so the rows kept are alice-alien, bob-heat, carol-up,
    # alice-heat; ids follow first appearance among them.
    assert triples == [(0, 0, 10), (0, 1, 9), (1, 1, 6), (2, 2, 7)]


def test_loader_reads_gzip_and_keeps_usernames_that_look_like_numbers(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(gzip.compress(b"user_id,movie_id,rating_val\n007,1917,9\n7,1917,3\n"))
    table = load_ratings_table(path)
    assert (table.n_users, table.n_films) == (2, 1)


@pytest.mark.parametrize("content", ["user,film,rating\na,b,5\n", "", "user_id,movie_id,"
                                     "rating_val\nx,y,0\n"])
def test_loader_rejects_files_without_usable_ratings(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    with pytest.raises(DatasetError):
        load_ratings_table(path)


def test_loader_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_ratings_table(tmp_path / "absent.csv")


def test_ranking_metrics_by_hand() -> None:
    ranked = np.array([5, 1, 9, 2])
    recall, ndcg = evaluation.ranking_metrics(ranked, np.array([1, 2, 7]), k=4)
    assert recall == pytest.approx(2 / 3)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / ideal)
    assert evaluation.ranking_metrics(ranked, np.array([5]), k=4) == (1.0, 1.0)
    # More relevant films than the list holds: recall counts all of them, NDCG's ideal
    # list is full.
    assert evaluation.ranking_metrics(np.array([3, 4, 5]), np.array([5, 4, 3, 2, 1]),
                                      k=3) == (pytest.approx(0.6), pytest.approx(1.0))


def test_nothing_of_the_held_out_users_reaches_the_model_or_the_baselines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic_ratings(seed=4, n_users=120, n_films=80)
    _, held_out = evaluation.split_holdout(np.asarray(data.user_index), data.n_users, 20,
                                           np.random.default_rng(0))
    held_users = {int(data.user_index[known[0]]) for known, _ in held_out}
    fitted_users, baseline_users = [], []
    real_fit = evaluation.fit_model

    def fit(user_index, *args, **kwargs):
        fitted_users.append(set(np.asarray(user_index).tolist()))
        return real_fit(user_index, *args, **kwargs)

    class RecordedBaselines(evaluation.Baselines):
        def __init__(self, user_index, *args) -> None:
            baseline_users.append(set(np.asarray(user_index).tolist()))
            super().__init__(user_index, *args)

    monkeypatch.setattr(evaluation, "fit_model", fit)
    monkeypatch.setattr(evaluation, "Baselines", RecordedBaselines)
    evaluate(*data, seed=0, holdout_users=20)
    # The first fit and baselines serve the held-out users; the CV ones use every user.
    assert len(held_users) == 20
    assert not fitted_users[0] & held_users and not baseline_users[0] & held_users
    assert held_users <= fitted_users[1] | fitted_users[2] | fitted_users[3]


def test_model_beats_every_baseline_on_structured_data(report: EvaluationReport) -> None:
    model, biases = report.method(MODEL), report.method(BIASES)
    popular, mean = report.method(POPULARITY), report.method(GLOBAL_MEAN)
    assert model.rmse < 0.9 * biases.rmse < mean.rmse
    assert model.mae < biases.mae
    assert model.cv_rmse < biases.cv_rmse < mean.cv_rmse
    assert model.recall > 1.1 * popular.recall and model.ndcg > popular.ndcg
    assert mean.recall is None and report.method(RANKED_BY_STARS).rmse is None


def test_report_describes_the_protocol(report: EvaluationReport) -> None:
    data = synthetic_ratings(seed=0)
    assert report.n_ratings == len(data.ratings)
    assert report.holdout_users == 60
    assert 0 < report.ranked_users <= 60
    counts = np.bincount(data.user_index, minlength=data.n_users)
    # Only the held-out users are scored: about a fifth of each one's ratings.
    assert 0.15 * 60 * counts.min() < report.hidden_ratings < 0.25 * 60 * counts.max()
    assert report.top_k == 50
    assert report.fit_seconds > 0 and report.per_user_ms > 0


def test_evaluation_is_reproducible_from_its_seed() -> None:
    data = synthetic_ratings(seed=4, n_users=120, n_films=80)
    first, again, other = (evaluate(*data, seed=seed, holdout_users=20) for seed in (0, 0, 1))
    timeless = {"fit_seconds": 0.0, "per_user_ms": 0.0}
    assert dataclasses.replace(again, **timeless) == dataclasses.replace(first, **timeless)
    assert other.method(MODEL).rmse != first.method(MODEL).rmse


def test_watched_films_are_folded_in_and_left_out_of_every_ranking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = synthetic_ratings(seed=4, n_users=120, n_films=200)
    rng = np.random.default_rng(2)
    watched: dict[int, np.ndarray] = {}
    for user in range(data.n_users):
        unrated = np.setdiff1d(np.arange(data.n_films), data.film_index[data.user_index == user])
        watched[user] = np.sort(rng.choice(unrated, size=4, replace=False))
    pairs = (np.repeat(np.arange(data.n_users), 4), np.concatenate(list(watched.values())))
    fit_watched, folded, excluded, fitting = [], [], [], []
    real_fit, real_fold_in = evaluation.fit_model, RecommenderModel.fold_in

    def fit(*args, watched=None, **kwargs):
        fit_watched.append(watched)
        fitting.append(True)  # fitting folds its own inner users in to learn the second stage
        try:
            return real_fit(*args, watched=watched, **kwargs)
        finally:
            fitting.pop()

    def fold_in(model, films, ratings, watched_films=None):
        if not fitting:
            folded.append((films, watched_films))
        return real_fold_in(model, films, ratings, watched_films)

    real_top_k = evaluation.top_k
    monkeypatch.setattr(evaluation, "fit_model", fit)
    monkeypatch.setattr(RecommenderModel, "fold_in", fold_in)
    monkeypatch.setattr(evaluation, "top_k", lambda scores, seen, k: (
        excluded.append(seen), real_top_k(scores, seen, k))[1])
    evaluate(*data, seed=0, holdout_users=20, watched=pairs)

    held_out = {user for user in range(data.n_users)
                if len(fit_watched[0][0]) and user not in set(fit_watched[0][0].tolist())}
    assert len(held_out) == 20  # the held-out users' watched films are not fitted on
    assert all(len(w[0]) == len(pairs[0]) for w in fit_watched[1:])  # the CV fits see all
    assert len(folded) == 20
    for items, watched_items in folded:  # each with its own user's watched films
        user = next(u for u in held_out
                    if np.isin(items, data.film_index[data.user_index == u]).all())
        np.testing.assert_array_equal(np.sort(watched_items), watched[user])
    for seen in excluded:  # every ranking leaves out the known and the watched films
        watched_items = next(w for items, w in folded if np.isin(items, seen).all())
        assert np.isin(watched_items, seen).all()


def test_format_report_is_a_plain_table(report: EvaluationReport) -> None:
    text = format_report(report)
    for name in (GLOBAL_MEAN, BIASES, POPULARITY, MODEL, RANKED_BY_STARS):
        assert name in text
    model_line = next(line for line in text.splitlines() if line.startswith(MODEL))
    assert f"{report.method(MODEL).rmse:.3f}" in model_line
    assert f"{report.method(MODEL).recall:.4f}" in model_line
    assert "x popularity" in text and "below the biases" in text


def test_command_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`recommend.py --evaluate RATINGS_CSV` is the evaluation's command."""
    data = synthetic_ratings(seed=2, n_users=120, n_films=80)
    path = tmp_path / "ratings.csv"
    lines = ["user_id,movie_id,rating_val"] + [
        f"user{u},film-{i},{r}" for u, i, r in zip(data.user_index, data.film_index,
                                                   data.ratings)]
    path.write_text("\n".join(lines) + "\n")
    assert recommend.main(["--evaluate", str(path), "--seed", "3",
                           "--data-dir", str(tmp_path / "unused"), "-q"]) == 0
    output = capsys.readouterr().out
    # At most a fifth of the users are held out, so that most are fitted on.
    assert "seed 3" in output and MODEL in output and "held out 24 users" in output


def test_command_fails_cleanly_on_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file") as caught:
        recommend.main(["--evaluate", str(tmp_path / "absent.csv"),
                        "--data-dir", str(tmp_path / "unused"), "-q"])
    assert exit_code_for(caught.value) == 2


def test_targets_on_the_real_500k_sample(shared_dataset_dir: Path) -> None:
    """The issue's targets, on the split that was not used for tuning (seed 0)."""
    table = load_ratings_table(shared_dataset_dir / "ratings.csv.gz")
    assert len(table.ratings) == 509_463
    result = evaluate(*table, seed=0)
    model, biases, popular = (result.method(MODEL), result.method(BIASES),
                              result.method(POPULARITY))
    assert model.rmse <= 0.95 * biases.rmse
    assert model.cv_rmse < biases.cv_rmse
    # The issue asks for 1.8x; what the model gets here and on the tuning splits is in
    # BENCHMARKS.md (figures 7 and 7d). The bound leaves room for the rounding of another
    # BLAS, which a randomized SVD passes on.
    assert model.recall >= 1.78 * popular.recall
    assert model.ndcg >= 1.75 * popular.ndcg
    # Ordering by predicted stars ranks worse: why the order comes from its own model.
    assert result.method(RANKED_BY_STARS).recall < 0.8 * model.recall
    assert biases.recall < 0.5 * popular.recall
