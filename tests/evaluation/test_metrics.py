"""Metric tests against values worked out by hand."""

import math

import numpy as np
import pytest

from softvq.errors import SoftVQError
from softvq.evaluation import (
    MetricInputError,
    clustering_accuracy,
    codebook_usage,
    kmeans_labels,
    kmeans_metrics,
    linear_probe,
    reconstruction_mse,
)


# ---------------------------------------------------------------- clustering_accuracy


def test_permuted_labels_are_perfect():
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    perm = np.array([2, 0, 1])[y]
    assert clustering_accuracy(y, perm) == 1.0


def test_hand_worked_example():
    # contingency (rows: class 0/1, cols: cluster 0/1) = [[1, 2], [3, 0]]
    # best matching: class0<->cluster1 (2) + class1<->cluster0 (3) = 5 of 6.
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]) == pytest.approx(5 / 6)


def test_more_clusters_than_classes():
    # contingency [[2, 1, 0], [0, 0, 3]]: class0->c0 (2), class1->c2 (3); c1 unmatched -> 5/6.
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 0, 1, 2, 2, 2]) == pytest.approx(5 / 6)
    # every cluster mixes both classes equally: [[1,1,1],[1,1,1]] -> 2 matches of 6.
    assert clustering_accuracy([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]) == pytest.approx(1 / 3)


def test_fewer_clusters_than_classes():
    # 3 classes, one cluster: best is the largest class (3 of 6).
    assert clustering_accuracy([0, 0, 0, 1, 1, 2], [5, 5, 5, 5, 5, 5]) == pytest.approx(0.5)


def test_arbitrary_label_values():
    y_true = np.array(["cat", "cat", "dog", "dog", "eel"])
    y_pred = np.array([17, 17, -3, -3, 100])
    assert clustering_accuracy(y_true, y_pred) == 1.0
    assert clustering_accuracy([10, 10, 20, 20], [7, 8, 8, 8]) == pytest.approx(3 / 4)


def test_accuracy_validates():
    with pytest.raises(ValueError, match="length"):
        clustering_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        clustering_accuracy([], [])
    with pytest.raises(ValueError):
        clustering_accuracy([[0, 1]], [[0, 1]])


def test_metric_errors_are_user_facing():
    assert issubclass(MetricInputError, SoftVQError)
    assert issubclass(MetricInputError, ValueError)


# ---------------------------------------------------------------- k-means


def _blobs(n_per=50, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * dim, [20.0] * dim, [-20.0] + [20.0] * (dim - 1)])
    z = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centres])
    y = np.repeat([7, 3, 5], n_per)  # non-contiguous label values
    return z, y


def test_kmeans_separated_blobs():
    z, y = _blobs()
    m = kmeans_metrics(z, y, seed=1)
    assert set(m) == {"acc", "nmi", "ari"}
    assert m["acc"] == 1.0
    assert m["nmi"] == pytest.approx(1.0)
    assert m["ari"] == pytest.approx(1.0)
    assert all(type(v) is float for v in m.values())


def test_kmeans_identical_partition_scores_one():
    # NMI / ARI of identical partitions are exactly 1 whatever the label names.
    z, y = _blobs(n_per=20)
    pred = kmeans_labels(z, 3)
    assert pred.shape == (60,)
    assert clustering_accuracy(y, pred) == 1.0
    m = kmeans_metrics(z, y, n_clusters=3)
    assert (m["nmi"], m["ari"]) == (pytest.approx(1.0), pytest.approx(1.0))


def test_kmeans_more_clusters_than_classes_lowers_accuracy():
    z, y = _blobs(n_per=20)
    m = kmeans_metrics(z, y, n_clusters=6)
    assert m["acc"] < 1.0  # extra clusters split classes; unmatched ones count as errors


def test_kmeans_is_deterministic_given_seed():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(200, 4)), rng.integers(0, 4, 200)
    assert kmeans_metrics(z, y, seed=3) == kmeans_metrics(z, y, seed=3)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_kmeans_refuses_non_finite(bad):
    z, y = _blobs(n_per=10)
    z[4, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        kmeans_metrics(z, y)


def test_kmeans_validates_shapes():
    z, y = _blobs(n_per=10)
    with pytest.raises(ValueError, match="length"):
        kmeans_metrics(z, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        kmeans_metrics(z[:, 0], y)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_metrics(z, y, n_clusters=1000)


@pytest.mark.parametrize("kw, message", [({"n_init": 0}, "n_init .* >= 1, got 0"), ({"n_init": 2.5}, "n_init"),
                                         ({"seed": -1}, r"seed must be an integer in 0..2\*\*32-1, got -1")])
def test_kmeans_options_get_our_message_not_sklearns(kw, message):
    z, y = _blobs(n_per=10)
    with pytest.raises(MetricInputError, match=message):
        kmeans_metrics(z, y, **kw)


# ---------------------------------------------------------------- linear probe


def test_linear_probe_separable_data():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 3))

    def make(n):
        z = rng.normal(size=(n, 8)) * 3.0 + 50.0  # offset/scale exercise the scaler
        return z, np.argmax((z - 50.0) @ w, axis=1)

    acc = linear_probe(*make(2000), *make(500))
    assert acc >= 0.97


def test_linear_probe_random_labels_near_chance():
    rng = np.random.default_rng(1)
    z_tr, z_te = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16))
    y_tr, y_te = rng.integers(0, 4, 3000), rng.integers(0, 4, 3000)
    acc = linear_probe(z_tr, y_tr, z_te, y_te)
    assert type(acc) is float
    assert abs(acc - 0.25) < 0.04  # chance = 1/4; std of acc at n=3000 is ~0.008


def test_linear_probe_is_trained_to_convergence():
    """Overlapping classes need more than 100 lbfgs iterations; the probe must not stop there."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 64)) * 0.35
    # correlated dimensions (condition number 1e3, which standardizing does not undo):
    # lbfgs needs about 240 iterations here, and stopping at 100 costs 0.009 accuracy
    mix = np.linalg.qr(rng.normal(size=(64, 64)))[0] @ np.diag(np.logspace(0, -3, 64)) @ np.linalg.qr(rng.normal(size=(64, 64)))[0]
    y_tr, y_te = rng.integers(0, 10, 20000), rng.integers(0, 10, 2000)
    z_tr = (centres[y_tr] + rng.normal(size=(20000, 64))) @ mix
    z_te = (centres[y_te] + rng.normal(size=(2000, 64))) @ mix
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the default budget converges
        acc = linear_probe(z_tr, y_tr, z_te, y_te)
    sc = StandardScaler().fit(z_tr)
    tight = LogisticRegression(tol=1e-8, max_iter=5000).fit(sc.transform(z_tr), y_tr)
    # within 0.003 of a fit to tol=1e-8 (0.7705 vs 0.7725); 100 iterations give 0.7635
    assert acc == pytest.approx(float((tight.predict(sc.transform(z_te)) == y_te).mean()), abs=3e-3)


def test_linear_probe_validates():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="dimension"):
        linear_probe(z, y, z[:, :2], y)
    with pytest.raises(ValueError, match="2 distinct"):
        linear_probe(z, np.zeros(20, int), z, y)
    z_bad = z.copy()
    z_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="z_test.*non-finite"):
        linear_probe(z, y, z_bad, y)


# ---------------------------------------------------------------- codebook usage


def test_uniform_usage_perplexity_is_k():
    u = codebook_usage(np.tile(np.arange(8), 5).reshape(5, 8), num_codes=8)
    assert u["perplexity"] == pytest.approx(8.0)
    assert u["dead_codes"] == 0
    assert u["counts"] == [5] * 8


def test_single_code_perplexity_is_one():
    u = codebook_usage(np.full((3, 4, 4), 2), num_codes=16)
    assert u["perplexity"] == pytest.approx(1.0)
    assert u["dead_codes"] == 15
    assert u["counts"] == [0, 0, 48] + [0] * 13


def test_partial_usage_by_hand():
    # counts [2, 0, 1, 1, 0]: p = (1/2, 1/4, 1/4); H = 1.5 ln 2; perplexity = 2**1.5.
    u = codebook_usage(np.array([0, 2, 0, 3]), num_codes=5)
    assert u["counts"] == [2, 0, 1, 1, 0]
    assert u["dead_codes"] == 2
    assert u["perplexity"] == pytest.approx(2**1.5)
    assert all(type(c) is int for c in u["counts"]) and type(u["dead_codes"]) is int


def test_codebook_usage_validates():
    with pytest.raises(ValueError, match="out of range"):
        codebook_usage(np.array([0, 5]), num_codes=5)
    with pytest.raises(ValueError, match="out of range"):
        codebook_usage(np.array([-1, 0]), num_codes=5)
    with pytest.raises(ValueError, match="integers"):
        codebook_usage(np.array([0.0, 1.0]), num_codes=5)
    with pytest.raises(ValueError, match="empty"):
        codebook_usage(np.array([], dtype=int), num_codes=5)


# ---------------------------------------------------------------- reconstruction


def test_reconstruction_mse_by_hand():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    x_hat = np.array([[1.0, 1.0], [2.0, 1.0]])
    # squared errors 1, 0, 0, 4 -> mean 5/4
    assert reconstruction_mse(x, x_hat) == pytest.approx(1.25)
    assert reconstruction_mse(x, x) == 0.0
    assert type(reconstruction_mse(x, x_hat)) is float


def test_reconstruction_mse_validates():
    with pytest.raises(ValueError, match="shape"):
        reconstruction_mse(np.zeros((2, 3)), np.zeros((3, 2)))
    assert math.isfinite(reconstruction_mse(np.zeros(3, np.float32), np.ones(3, np.float32)))
