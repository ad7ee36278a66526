"""The collaborative-filtering recommender: one model orders the list, another predicts
the stars.

Why two models: on Letterboxd ratings a factor model fitted to minimise rating
error ranks worse than plain popularity (it favours obscure films a few people
loved), while a truncated SVD of the zero-filled user-film matrix ranks well but
its scores are not ratings (Cremonesi et al., RecSys 2010). So the list comes from
a first stage (`ranking`: EASE on a low-rank-plus-diagonal Gram) whose best films a
second stage (`second_stage`) reorders with weights learned at fit time, and the
stars from a biases + ALS model (`rating`).

In the order data flows: `params` (hyper-parameters, rating scale), `linalg` (the
sparse and dense algebra fitting needs), `ranking`, `rating`, `second_stage`,
`model` (the fitted model: fold-in, picks with the cold-start fallback, stars,
reasons), `fit` (fitting it), `file_stamps` (large files checked whole once, then
trusted while unchanged), `model_file` (saving and loading it), `dataset_index` (each
user's ratings and the lookups of names, as arrays), `film_copy` (the film table in
binary form), `cache` (all of these kept next to a dataset), `evaluation` (quality
against baselines).
"""
