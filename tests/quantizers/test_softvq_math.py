"""SoftVQ against the limits and identities of METHOD section 2."""

import math

import pytest
import torch

from softvq import VQ, SoftVQ
from softvq.quantizers import posterior_logits, soft_assign

SIGMA_MODES = ["fixed", "learned", "learned_per_code", "predicted"]


def _log_sigma_input(mode, z, k, value):
    if mode != "predicted":
        return None
    return torch.full((*z.shape[:-1], k), math.log(value), dtype=z.dtype)


def _make(mode, k=16, d=4, sigma=1.0, **kw):
    torch.manual_seed(0)
    kw.setdefault("min_sigma", 1e-6)
    kw.setdefault("max_sigma", 1e8)
    return SoftVQ(k, d, sigma=mode, init_sigma=sigma, **kw)


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_small_sigma_equals_hard_vq(mode):
    q = _make(mode, sigma=1e-5).eval()
    hard = VQ(16, 4).eval()
    hard.codebook.data.copy_(q.codebook.data)
    z = torch.randn(50, 3, 4)
    out = q(z, _log_sigma_input(mode, z, 16, 1e-5))
    ref = hard(z)
    torch.testing.assert_close(out.z_q, ref.z_q, rtol=0, atol=1e-6)
    assert torch.equal(out.indices, ref.indices)
    torch.testing.assert_close(out.probs, ref.probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_large_sigma_gives_codebook_mean(mode):
    q = _make(mode, sigma=1e7).eval()
    z = torch.randn(20, 4)
    out = q(z, _log_sigma_input(mode, z, 16, 1e7))
    torch.testing.assert_close(out.probs, torch.full_like(out.probs, 1 / 16), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out.z_q, q.codebook.mean(0).expand(20, 4), rtol=1e-4, atol=1e-5)


def test_codeword_input_returns_that_codeword():
    q = _make("fixed", sigma=1e-3).eval()
    out = q(q.codebook.detach().clone())
    torch.testing.assert_close(out.z_q, q.codebook.detach(), rtol=0, atol=1e-6)
    assert torch.equal(out.indices, torch.arange(16))


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_posterior_sums_to_one_and_matches_bayes_rule(mode):
    """Compare against a direct (N, K, d) evaluation of Bayes' rule in float64."""
    torch.manual_seed(1)
    k, d = 7, 5
    z = torch.randn(30, d, dtype=torch.float64)
    e = torch.randn(k, d, dtype=torch.float64)
    log_sigma = {
        "fixed": torch.tensor(-0.3, dtype=torch.float64),
        "learned": torch.tensor(0.4, dtype=torch.float64),
        "learned_per_code": torch.randn(k, dtype=torch.float64) * 0.5,
        "predicted": torch.randn(30, k, dtype=torch.float64) * 0.5,
    }[mode]
    log_prior = torch.log_softmax(torch.randn(k, dtype=torch.float64), -1)
    probs, z_hat = soft_assign(z, e, log_sigma, log_prior)
    sq = ((z[:, None, :] - e[None]) ** 2).sum(-1)
    sigma2 = torch.exp(2 * log_sigma).expand(30, k)
    logits = log_prior - sq / (2 * sigma2) - d * log_sigma.expand(30, k)
    ref = torch.softmax(logits, -1)
    torch.testing.assert_close(probs, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(probs.sum(-1), torch.ones(30, dtype=torch.float64))
    torch.testing.assert_close(z_hat, ref @ e)


def test_reference_normalization_multiplies_by_sigma():
    torch.manual_seed(2)
    z, e = torch.randn(10, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    ls = torch.randn(4, dtype=torch.float64)
    sq = ((z[:, None] - e[None]) ** 2).sum(-1)
    base = -sq / (2 * torch.exp(2 * ls))
    torch.testing.assert_close(posterior_logits(z, e, ls, normalization="reference"), base + ls)
    torch.testing.assert_close(posterior_logits(z, e, ls, normalization="none"), base)


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_chunked_equals_unchunked(mode):
    torch.manual_seed(3)
    z = torch.randn(37, 4, requires_grad=True)
    a, b = _make(mode), _make(mode, chunk_size=5)
    b.load_state_dict(a.state_dict())
    ls = torch.randn(37, 16, requires_grad=True) if mode == "predicted" else None
    out_a, out_b = a(z, ls), b(z, ls)
    torch.testing.assert_close(out_a.z_q, out_b.z_q)
    torch.testing.assert_close(out_a.probs, out_b.probs)
    ga = torch.autograd.grad((out_a.z_q.sum() + out_a.loss), [z, a.codebook])
    gb = torch.autograd.grad((out_b.z_q.sum() + out_b.loss), [z, b.codebook])
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y)


def test_learned_prior_shifts_posterior():
    q = _make("fixed", k=2, d=1, sigma=1.0, prior="learned").eval()
    q.codebook.data = torch.tensor([[-1.0], [1.0]])
    z = torch.zeros(1, 1)  # equidistant: the posterior is the prior
    torch.testing.assert_close(q(z).probs, torch.tensor([[0.5, 0.5]]))
    q.prior_logits.data = torch.tensor([math.log(3.0), 0.0])
    torch.testing.assert_close(q(z).probs, torch.tensor([[0.75, 0.25]]))


def test_eval_output_hard_returns_codewords_and_soft_in_training():
    q = _make("fixed", sigma=2.0, eval_output="hard")
    z = torch.randn(8, 4)
    q.eval()
    out = q(z)
    torch.testing.assert_close(out.z_q, q.codebook[out.indices].detach())
    q.train()
    out = q(z)
    torch.testing.assert_close(out.z_q, out.probs @ q.codebook.detach())


def test_noise_only_in_training():
    q = _make("fixed", noise_std=0.5)
    z = torch.randn(8, 4)
    q.eval()
    torch.testing.assert_close(q(z).z_q, q(z).z_q)
    q.train()
    torch.manual_seed(0)
    a = q(z).z_q
    torch.manual_seed(1)
    assert not torch.allclose(a, q(z).z_q)


def test_set_sigma_anneals_fixed_sigma():
    q = _make("fixed", sigma=1.0)
    q.set_sigma(0.25)
    torch.testing.assert_close(q.sigma, torch.tensor(0.25))
    with pytest.raises(ValueError, match="sigma"):
        _make("learned").set_sigma(0.5)


def test_perplexity_uniform_and_single_code():
    q = _make("fixed", sigma=1e7).eval()
    assert q(torch.randn(10, 4)).perplexity.item() == pytest.approx(16.0, rel=1e-4)
    q2 = _make("fixed", sigma=1e-5).eval()
    z = q2.codebook.detach()[3].expand(10, 4)
    assert q2(z).perplexity.item() == pytest.approx(1.0, abs=1e-4)


def test_loss_is_weighted_sum():
    q = _make("learned", codebook_weight=3.0, commitment_weight=7.5)
    out = q(torch.randn(9, 2, 4))
    torch.testing.assert_close(out.loss, 3.0 * out.codebook_loss + 7.5 * out.commitment_loss)
    # Forward values of both terms are the same squared distance.
    torch.testing.assert_close(out.codebook_loss, out.commitment_loss)
