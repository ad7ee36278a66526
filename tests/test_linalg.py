"""The dense and sparse algebra the fit rests on, against numpy's own."""
from __future__ import annotations

import numpy as np
import pytest

from recommender import linalg
from recommender.linalg import orthonormalise, rowwise_dot


@pytest.mark.parametrize("passes", [1, 2])
def test_orthonormalise_gives_an_orthonormal_basis_of_the_same_columns(passes: int) -> None:
    rng = np.random.default_rng(3)
    # Tall and moderately conditioned, as a range finder's products are.
    basis = (rng.standard_normal((5_000, 40)) @ np.diag(np.geomspace(1, 100, 40))
             @ rng.standard_normal((40, 40))).astype(np.float32)
    result = orthonormalise(basis, passes)
    assert result.shape == basis.shape and result.dtype == np.float32
    gram = result.astype(np.float64).T @ result.astype(np.float64)
    assert np.abs(gram - np.eye(40)).max() < (1e-3 if passes == 1 else 1e-5)
    # Every column of the input lies in the span of the output.
    projected = result @ (result.T @ basis)
    assert np.linalg.norm(projected - basis) < 1e-4 * np.linalg.norm(basis)


def test_orthonormalise_falls_back_to_householder_on_dependent_columns() -> None:
    rng = np.random.default_rng(4)
    column = rng.standard_normal((1_000, 1)).astype(np.float32)
    result = orthonormalise(np.hstack([column, column, rng.standard_normal((1_000, 3))
                                       .astype(np.float32)]))
    assert np.all(np.isfinite(result)) and result.shape == (1_000, 5)


@pytest.mark.parametrize("chunk", [7, 1_000])
def test_rowwise_dot_is_each_pair_of_rows_dot_product(chunk: int) -> None:
    rng = np.random.default_rng(5)
    left = rng.standard_normal((30, 6)).astype(np.float32)
    right = rng.standard_normal((40, 6)).astype(np.float32)
    left_rows, right_rows = rng.integers(0, 30, 500), rng.integers(0, 40, 500)
    expected = (left[left_rows].astype(np.float64) * right[right_rows]).sum(axis=1)
    result = rowwise_dot(left, left_rows, right, right_rows, chunk=chunk)
    assert result.dtype == np.float32 and np.allclose(result, expected, atol=1e-5)


@pytest.mark.parametrize("block_entries", [1, 10**9])
def test_pattern_products_equal_dense_products_in_one_block_or_many(
        block_entries: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linalg, "MIN_BLOCK_ENTRIES", block_entries)
    monkeypatch.setattr(linalg, "worker_count", lambda: 3)
    rng = np.random.default_rng(2)
    rows, columns = rng.integers(0, 40, 600), rng.integers(0, 25, 600)
    values = rng.random(600)
    pattern = linalg.SparsePattern(rows, columns, (40, 25))
    assert len(pattern.blocks) == (3 if block_entries == 1 else 1)
    dense = np.zeros((40, 25))
    np.add.at(dense, (rows, columns), values.astype(np.float32))
    matrix = pattern.matrix(values)
    right, left = rng.random((25, 4)), rng.random((40, 4))
    np.testing.assert_allclose(matrix @ right, dense @ right, rtol=1e-5)
    np.testing.assert_allclose(matrix.T @ left, dense.T @ left, rtol=1e-5)
    # scipy keeps each block's columns as the pattern holds them: none was copied.
    for block, owned in zip(matrix.blocks, pattern.blocks):
        assert np.shares_memory(block.indices, owned.indices)


@pytest.mark.parametrize("n", [1, 5, 301])
def test_solve_ridge_solves_each_rows_regularised_system(
        n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linalg, "SOLVED_TOGETHER", 7)  # several parts in each thread
    rng = np.random.default_rng(n)
    width = 4
    features = rng.random((n, 6, width))
    first, second = np.triu_indices(width)
    pair_sums = (features[:, :, first] * features[:, :, second]).sum(axis=1)
    rhs, reg = rng.random((n, width)), rng.random((n, width)) + 0.5
    solved = linalg.solve_ridge(pair_sums, rhs, reg)
    for row in range(n):
        gram = features[row].T @ features[row] + np.diag(reg[row])
        np.testing.assert_allclose(gram @ solved[row], rhs[row], rtol=1e-9, atol=1e-12)
    shared = linalg.solve_ridge(pair_sums, rhs, np.full((1, width), 2.0))
    np.testing.assert_allclose(
        features[0].T @ features[0] @ shared[0] + 2.0 * shared[0], rhs[0], rtol=1e-9)
