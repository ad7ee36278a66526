"""The linear algebra fitting needs: sparse products on all cores, a randomized SVD,
batched ridge solves, and picking the best of many scores.

scipy is imported inside the functions that use it: recommending from a saved model
needs none of them but `top_n`, and skips that import.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

# Sparse products are split across threads only in blocks of at least this many entries.
MIN_BLOCK_ENTRIES = 250_000
# The most threads one sparse product is split across.
MAX_WORKERS = 4
# Rows of per-rating arrays turned into float64 at a time (grouped_sums).
CHUNK_ROWS = 5_000_000
# Ridge systems gathered and solved at a time in each thread (solve_ridge).
SOLVED_TOGETHER = 65_536


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n highest finite scores, best first; -inf marks an entry left out.

    A partial sort: lists are short, catalogues are tens of thousands of films."""
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    best = np.argpartition(-scores, n - 1)[:n]
    return best[np.argsort(-scores[best], kind="stable")].astype(np.int64)


def worker_count() -> int:
    """The cores this process may use, at most MAX_WORKERS."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, available))


class SparseRows:
    """A CSR matrix cut into row blocks of equal work, multiplied on all cores.

    scipy's sparse-dense products are single-threaded but release the GIL, and they are
    where fitting spends most of its time. `.T` multiplies by the transpose from the same
    blocks, so no second, transposed copy of a matrix of 100M ratings is ever built.
    """

    def __init__(self, blocks: list, transposed: bool = False) -> None:
        self.blocks = blocks  # of scipy.sparse.csr_matrix row blocks
        self.transposed = transposed

    @property
    def T(self) -> "SparseRows":  # noqa: N802 (numpy's name for it)
        return SparseRows(self.blocks, not self.transposed)

    def __matmul__(self, dense: np.ndarray) -> np.ndarray:
        if not self.transposed:
            if len(self.blocks) == 1:
                return np.asarray(self.blocks[0] @ dense)
            with ThreadPoolExecutor(len(self.blocks)) as pool:
                return np.vstack(list(pool.map(lambda block: block @ dense, self.blocks)))
        # Each block's rows are a slice of the dense operand; the products add up.
        starts = np.cumsum([0] + [block.shape[0] for block in self.blocks])
        parts = [(block, dense[start:start + block.shape[0]])
                 for block, start in zip(self.blocks, starts)]
        if len(parts) == 1:
            return np.asarray(parts[0][0].T @ parts[0][1])
        with ThreadPoolExecutor(len(parts)) as pool:
            products = pool.map(lambda part: np.asarray(part[0].T @ part[1]), parts)
            total = next(products)
            for product in products:
                total += product
        return total


class SparsePattern:
    """A fixed sparsity pattern that many different value arrays are multiplied through."""

    def __init__(self, rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> None:
        order, indptr, indices = row_major(rows, columns, shape[0])
        self.shape = shape
        # Threads pay off only when each gets a sizeable share of the entries.
        blocks = max(1, min(worker_count(), int(indptr[-1]) // MIN_BLOCK_ENTRIES))
        work = np.linspace(0, indptr[-1], blocks + 1)
        bounds = np.unique(np.concatenate([[0], np.searchsorted(indptr, work[1:-1]),
                                           [shape[0]]]))
        rows_of_blocks = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        # Each block owns its arrays: scipy copies an index or data array that is a
        # view of less than half a larger one ("pruning") on every matrix built. One
        # whole array is split at a time, so a split costs one array's memory at most.
        orders = _split(order, indptr, rows_of_blocks)
        del order
        columns_of_blocks = _split(indices, indptr, rows_of_blocks)
        del indices
        self.blocks = [_PatternBlock(block_order, _block_indptr(indptr, first, last),
                                     block_columns, last - first)
                       for block_order, block_columns, (first, last) in zip(
                           orders, columns_of_blocks, rows_of_blocks)]

    def matrix(self, values_in_input_order: np.ndarray) -> SparseRows:
        """The pattern with these values, each block's gathered on a core of its own."""
        import scipy.sparse as sp

        values = np.asarray(values_in_input_order)

        def block_matrix(block: _PatternBlock) -> object:
            data = values[block.order].astype(np.float32, copy=False)
            return sp.csr_matrix((data, block.indices, block.indptr),
                                 shape=(block.n_rows, self.shape[1]), copy=False)

        if len(self.blocks) < 2:
            return SparseRows([block_matrix(block) for block in self.blocks])
        with ThreadPoolExecutor(len(self.blocks)) as pool:
            return SparseRows(list(pool.map(block_matrix, self.blocks)))


@dataclass(frozen=True)
class _PatternBlock:
    """Rows first..last of a pattern: where each entry's value is in the input, and CSR."""
    order: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    n_rows: int


def _split(entries: np.ndarray, indptr: np.ndarray, rows_of_blocks: list[tuple[int, int]]
           ) -> list[np.ndarray]:
    """A copy of the entries of each block of rows."""
    return [entries[indptr[first]:indptr[last]].copy() for first, last in rows_of_blocks]


def _block_indptr(indptr: np.ndarray, first: int, last: int) -> np.ndarray:
    """The CSR row pointer of rows first..last, int32 where it fits (as scipy keeps it)."""
    pointer = indptr[first:last + 1] - indptr[first]
    return pointer.astype(np.int32) if pointer[-1] < 2**31 else pointer


def row_major(rows: np.ndarray, columns: np.ndarray, n_rows: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permutation sorting entries by row (stable), the CSR row pointer (int64) and the
    sorted columns (int32)."""
    order = np.argsort(rows, kind="stable")
    if len(order) < 2**31:
        order = order.astype(np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return order, indptr, columns[order].astype(np.int32)


def row_chunks(n: int, size: int = CHUNK_ROWS) -> Iterator[slice]:
    """Slices covering 0..n, `size` at a time."""
    return (slice(start, min(start + size, n)) for start in range(0, n, size))


def grouped_sums(index: np.ndarray, minlength: int,
                 values: Callable[[slice], np.ndarray]) -> np.ndarray:
    """Per group, the sum of `values(part)` over the rows `index` puts in it (float64).

    A chunk of rows at a time: over 100M ratings one float64 copy of the values, which
    `np.bincount` would make, costs 800 MB.
    """
    total = np.zeros(minlength)
    for part in row_chunks(len(index)):
        total += np.bincount(index[part], weights=values(part), minlength=minlength)
    return total


def pair_products(features: np.ndarray) -> np.ndarray:
    """Per row, the upper triangle of its outer product, so Grams are one sparse product."""
    first, second = np.triu_indices(features.shape[1])
    return features[:, first] * features[:, second]


def solve_ridge(pair_sums: np.ndarray, rhs: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Solve every row's (Gram + diag(reg)) w = rhs at once; reg may differ per row.

    pair_sums: each row's Gram as the upper triangle `pair_products` sums to. The rows
    are solved in a block per core (numpy's batched solve and gathers release the GIL).
    """
    n, width = rhs.shape
    first, second = np.triu_indices(width)
    # Where each entry of a full Gram sits in the upper triangle, for one gather.
    place = np.empty((width, width), dtype=np.intp)
    place[first, second] = place[second, first] = np.arange(len(first))
    reg = np.broadcast_to(reg, (n, width))
    diagonal = np.arange(width)
    out = np.empty((n, width))

    def solve(block: slice) -> None:
        # A bounded number of rows at a time: the gathered Grams are width^2 per row.
        for part in row_chunks(block.stop - block.start, SOLVED_TOGETHER):
            rows = slice(block.start + part.start, block.start + part.stop)
            gram = pair_sums[rows][:, place].astype(np.float64, copy=False)
            gram[:, diagonal, diagonal] += reg[rows]
            out[rows] = np.linalg.solve(gram, rhs[rows].astype(np.float64)[:, :, None])[:, :, 0]

    blocks = list(row_chunks(n, max(1, -(-n // worker_count()))))
    if len(blocks) < 2:
        for rows in blocks:
            solve(rows)
        return out
    with ThreadPoolExecutor(len(blocks)) as pool:
        list(pool.map(solve, blocks))
    return out


def rowwise_dot(left: np.ndarray, left_rows: np.ndarray, right: np.ndarray,
                right_rows: np.ndarray, chunk: int = 500_000) -> np.ndarray:
    """left[left_rows[n]] . right[right_rows[n]] for every n, in chunks to bound memory,
    on all cores (numpy's gathers and einsum release the GIL; chunks write apart)."""
    out = np.empty(len(left_rows), dtype=np.float32)

    def one_chunk(start: int) -> None:
        stop = start + chunk
        out[start:stop] = np.einsum("ij,ij->i", left[left_rows[start:stop]],
                                    right[right_rows[start:stop]])

    starts = range(0, len(left_rows), chunk)
    if len(starts) < 2:
        for start in starts:
            one_chunk(start)
        return out
    with ThreadPoolExecutor(min(worker_count(), len(starts))) as pool:
        list(pool.map(one_chunk, starts))
    return out


def orthonormalise(basis: np.ndarray, passes: int = 2) -> np.ndarray:
    """An orthonormal basis of the columns: Cholesky QR, Householder QR if singular.

    Faster than Householder QR on tall matrices and as accurate after a second pass,
    for the moderately conditioned bases of a range finder. Between power iterations
    one pass is enough: the next product only needs a well-conditioned basis.
    """
    import scipy.linalg

    result = basis.astype(np.float64)
    try:
        for _ in range(passes):
            factor = np.linalg.cholesky(result.T @ result)
            result = scipy.linalg.solve_triangular(factor, result.T, lower=True).T
    except np.linalg.LinAlgError:
        result, _ = np.linalg.qr(basis.astype(np.float64))
    return np.ascontiguousarray(result, dtype=np.float32)


def top_right_singular_vectors(matrix: SparseRows, transposed: SparseRows,
                               shape: tuple[int, int], rank: int, power_iterations: int,
                               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Randomized range finder (Halko et al. 2011) with re-orthonormalised power iterations.

    Returns the vectors (float32, one column each) and their singular values (float64).
    """
    width = min(rank + 20, *shape)
    # Two passes for the basis that is finally projected on, one for those in between.
    basis = orthonormalise(matrix @ rng.standard_normal((shape[1], width)).astype(np.float32),
                           1 if power_iterations else 2)
    for step in range(power_iterations):
        basis = orthonormalise(transposed @ basis, 1)
        basis = orthonormalise(matrix @ basis, 2 if step == power_iterations - 1 else 1)
    # The right singular vectors of basis^T A, from the eigenvectors of its small Gram.
    projected = (transposed @ basis).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(projected.T @ projected)
    top = np.argsort(eigenvalues)[::-1][:rank]
    singular = np.sqrt(np.maximum(eigenvalues[top], 1e-12 * max(eigenvalues.max(), 1e-30)))
    vectors = np.ascontiguousarray(projected @ eigenvectors[:, top] / singular, dtype=np.float32)
    return vectors, singular
