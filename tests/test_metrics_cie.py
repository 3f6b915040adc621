"""Modal CIEs, Taxicab scores and the seeded ranking (Hooker et al.)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_gate.errors import InputError
from compress_gate.metrics import modal_cie, rank_by_score, taxicab_score, weighted_jaccard_similarity

EYE = np.eye(3, dtype=np.uint8)


def classes(*per_model: list[int]) -> np.ndarray:
    """(n_models, n_samples, 3) one-hot predictions from class indices per model."""
    return np.stack([EYE[list(c)] for c in per_model])


def test_modal_cie_multilabel_by_hand():
    # sample 0: dense votes (2, 0) of 3 -> modal (1, 0); compressed (2, 0) of 2 -> (1, 0): not a CIE
    # sample 1: dense votes (0, 3) -> (0, 1); compressed (0, 0) -> (0, 0): a CIE (attribute 1 differs)
    dense = np.array([[[1, 0], [0, 1]], [[1, 0], [0, 1]], [[0, 0], [0, 1]]])
    compressed = np.array([[[1, 0], [0, 0]], [[1, 0], [0, 0]]])
    cie = modal_cie(dense, compressed, task="multilabel", seed=0)
    assert cie.dense_modal.tolist() == [[1, 0], [0, 1]]
    assert cie.compressed_modal.tolist() == [[1, 0], [0, 0]]
    assert cie.is_cie.tolist() == [False, True]


def test_modal_cie_multiclass_by_hand():
    # sample 0: dense classes 2, 2, 1 -> 2; compressed 2 -> not a CIE. sample 1: dense 0, 1, 1 -> 1; compressed 0 -> CIE
    cie = modal_cie(classes([2, 0], [2, 1], [1, 1]), classes([2, 0]), task="multiclass", seed=0)
    assert cie.dense_modal.argmax(axis=1).tolist() == [2, 1]
    assert cie.is_cie.tolist() == [False, True]


def test_modal_ties_are_broken_at_random_reproducibly():
    # compressed classes 0 and 1 tie (one vote each); the dense population says 0
    dense, compressed = classes([0]), classes([0], [1])
    picks = {int(modal_cie(dense, compressed, task="multiclass", seed=s).compressed_modal.argmax()) for s in range(40)}
    assert picks == {0, 1}                                         # never class 2, which got no vote
    first = modal_cie(dense, compressed, task="multiclass", seed=7)
    again = modal_cie(dense, compressed, task="multiclass", seed=7)
    assert np.array_equal(first.compressed_modal, again.compressed_modal)
    tie = np.array([[[1]], [[0]]])                                 # multi-label: 1 of 2 votes
    assert {int(modal_cie(tie, tie, task="multilabel", seed=s).dense_modal[0, 0]) for s in range(40)} == {0, 1}


def test_taxicab_score_multiclass_by_hand_with_different_population_sizes():
    # dense 4 models: classes 0, 0, 1, 2 -> (1/2, 1/4, 1/4); compressed 2 models: 0, 1 -> (1/2, 1/2, 0)
    # T = 0 + 1/4 + 1/4 = 1/2; weighted Jaccard = (1/2 + 1/4 + 0) / (1/2 + 1/2 + 1/4) = 0.6
    dense, compressed = classes([0], [0], [1], [2]), classes([0], [1])
    assert taxicab_score(dense, compressed, task="multiclass").tolist() == [0.5]
    assert weighted_jaccard_similarity(dense, compressed, task="multiclass") == pytest.approx([0.6])


def test_taxicab_score_multilabel_by_hand():
    # dense 2 models (1, 0), (1, 1) -> positive shares (1, 1/2); compressed 3: (0,0), (1,0), (1,0) -> (2/3, 0)
    # T = 1/3 + 1/2 = 5/6
    dense = np.array([[[1, 0]], [[1, 1]]])
    compressed = np.array([[[0, 0]], [[1, 0]], [[1, 0]]])
    assert taxicab_score(dense, compressed, task="multilabel") == pytest.approx([5 / 6])
    # Jaccard over (share of 1, share of 0) per attribute: K = 2 -> (2 - 5/6) / (2 + 5/6)
    assert weighted_jaccard_similarity(dense, compressed, task="multilabel") == pytest.approx([(7 / 6) / (17 / 6)])


def test_rank_by_score_highest_first_ties_seeded():
    score = np.array([0.5, 2.0, 0.5, 1.0])
    orders = {tuple(rank_by_score(score, seed=s)) for s in range(30)}
    assert orders == {(1, 3, 0, 2), (1, 3, 2, 0)}
    assert np.array_equal(rank_by_score(score, seed=3), rank_by_score(score, seed=3))


def test_rank_by_score_refuses_nan():
    with pytest.raises(InputError, match="NaN or infinite values at rows \\[1\\]"):
        rank_by_score(np.array([0.1, np.nan]), seed=0)


def test_populations_must_cover_the_same_samples():
    with pytest.raises(InputError, match="same samples"):
        taxicab_score(classes([0, 1]), classes([0]), task="multiclass")
    with pytest.raises(InputError, match="n_models, n_samples, n_attributes"):
        modal_cie(EYE, EYE, task="multiclass", seed=0)
    with pytest.raises(InputError, match="one-hot"):
        taxicab_score(np.ones((1, 2, 3)), classes([0, 1]), task="multiclass")


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 5), st.integers(1, 30),
       st.integers(2, 4), st.sampled_from(["multiclass", "multilabel"]), st.integers(0, 1000))
def test_taxicab_ranking_equals_weighted_jaccard_ranking(data_seed, md, mc, n, k, task, seed):
    rng = np.random.default_rng(data_seed)
    if task == "multiclass":
        dense = np.eye(k, dtype=np.uint8)[rng.integers(0, k, (md, n))]
        compressed = np.eye(k, dtype=np.uint8)[rng.integers(0, k, (mc, n))]
    else:
        dense, compressed = rng.random((md, n, k)) < 0.5, rng.random((mc, n, k)) < 0.5
    by_taxicab = rank_by_score(taxicab_score(dense, compressed, task=task), seed=seed)
    by_jaccard = rank_by_score(1.0 - weighted_jaccard_similarity(dense, compressed, task=task), seed=seed)
    assert np.array_equal(by_taxicab, by_jaccard)


def test_tie_draws_are_made_only_for_tied_rows_with_the_same_values():
    # a uniform depends on (seed, stream, id hash, column) only: drawing it for the tied rows alone
    # gives the entries the whole (n, K) matrix would give there
    from compress_gate._id_hash import hash_ids
    from compress_gate.metrics.cie import _tie_uniforms, _tied_uniforms
    hashes = hash_ids(np.array([f"id{i}" for i in range(50)]))
    mask = np.random.default_rng(0).random((50, 3)) < 0.1
    assert np.array_equal(_tied_uniforms(hashes, 7, 1, mask), _tie_uniforms(hashes, 7, 1, 3)[mask])
    assert _tied_uniforms(hashes, 7, 1, np.zeros((50, 3), dtype=bool)).size == 0


def test_keyed_ties_of_two_model_populations_do_not_depend_on_the_other_samples():
    from compress_gate._id_hash import hash_ids
    rng = np.random.default_rng(1)
    dense, comp = (rng.integers(0, 2, (2, 40, 3)) for _ in range(2))
    hashes = hash_ids(np.array([f"s{i}" for i in range(40)]))
    whole = modal_cie(dense, comp, task="multilabel", seed=4, id_hash=hashes)
    part = modal_cie(dense[:, 10:25], comp[:, 10:25], task="multilabel", seed=4, id_hash=hashes[10:25])
    assert np.array_equal(whole.dense_modal[10:25], part.dense_modal)
    assert np.array_equal(whole.compressed_modal[10:25], part.compressed_modal)
