"""Gradients: float64 gradcheck, and which parameter learns from which loss term."""

import pytest
import torch

from softvq import VQ, SoftVQ

SIGMA_MODES = ["learned", "learned_per_code", "predicted"]


@pytest.mark.parametrize("gradient", ["straight_through", "exact"])
@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_gradcheck_float64(mode, gradient):
    """Analytic gradients match finite differences wherever the math is differentiable.

    Exact mode: ``z_q`` and ``probs`` w.r.t. z, log-sigmas, codebook and prior.
    Straight-through mode (``z_q``'s gradient is the identity by design, tested below):
    ``probs`` and the codebook term w.r.t. log-sigmas, codebook and prior at fixed z.
    """
    torch.manual_seed(0)
    q = SoftVQ(5, 3, sigma=mode, init_sigma=0.8, prior="learned", gradient=gradient).double()
    q.codebook.data.normal_()
    q.prior_logits.data.normal_()
    names = [n for n, _ in q.named_parameters()]
    z = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=gradient == "exact")
    ls = (0.3 * torch.randn(4, 2, 5, dtype=torch.float64)).requires_grad_() if mode == "predicted" else None
    params = tuple(p.detach().clone().requires_grad_() for p in q.parameters())

    def f(z, ls, *p):
        out = torch.func.functional_call(q, dict(zip(names, p)), (z, ls))
        return (out.z_q, out.probs) if gradient == "exact" else (out.probs, out.codebook_loss)

    assert torch.autograd.gradcheck(f, (z, ls, *params))


def _grads(loss, tensors):
    grads = torch.autograd.grad(loss, tensors, allow_unused=True, retain_graph=True)
    return [g is not None and g.abs().sum().item() > 0 for g in grads]


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_straight_through_routes_gradients(mode):
    torch.manual_seed(0)
    q = SoftVQ(6, 3, sigma=mode, prior="learned", gradient="straight_through")
    z = torch.randn(10, 3, requires_grad=True)
    ls = torch.randn(10, 6, requires_grad=True) if mode == "predicted" else None
    sigma_param = ls if mode == "predicted" else q.log_sigma
    out = q(z, ls)
    targets = [z, q.codebook, sigma_param, q.prior_logits]
    # decoder input: reaches the encoder only, and its gradient is passed unchanged
    assert _grads(out.z_q.sum(), targets) == [True, False, False, False]
    torch.testing.assert_close(torch.autograd.grad(out.z_q.sum(), z, retain_graph=True)[0], torch.ones_like(z))
    # codebook term: codebook, sigma and prior, not the encoder output
    assert _grads(out.codebook_loss, targets) == [False, True, True, True]
    # commitment term: encoder output only
    assert _grads(out.commitment_loss, targets) == [True, False, False, False]


@pytest.mark.parametrize("mode", SIGMA_MODES)
def test_exact_routes_gradients_through_posterior(mode):
    torch.manual_seed(0)
    q = SoftVQ(6, 3, sigma=mode, prior="learned", gradient="exact")
    z = torch.randn(10, 3, requires_grad=True)
    ls = torch.randn(10, 6, requires_grad=True) if mode == "predicted" else None
    sigma_param = ls if mode == "predicted" else q.log_sigma
    out = q(z, ls)
    targets = [z, q.codebook, sigma_param, q.prior_logits]
    assert _grads(out.z_q.sum(), targets) == [True, True, True, True]
    assert _grads(out.commitment_loss, targets) == [True, False, False, False]
    # codebook term also differentiates through p(k|z) (only the target z is stopped)
    assert _grads(out.codebook_loss, targets) == [True, True, True, True]


def test_fixed_sigma_has_no_trainable_sigma():
    q = SoftVQ(4, 2, sigma="fixed")
    assert [n for n, _ in q.named_parameters()] == ["codebook"]
    assert "log_sigma" in dict(q.named_buffers())


def test_vq_gradients():
    torch.manual_seed(0)
    q = VQ(6, 3)
    z = torch.randn(10, 3, requires_grad=True)
    out = q(z)
    assert _grads(out.z_q.sum(), [z, q.codebook]) == [True, False]
    assert _grads(out.codebook_loss, [z, q.codebook]) == [False, True]
    assert _grads(out.commitment_loss, [z, q.codebook]) == [True, False]


def test_vq_ema_moves_codebook_to_cluster_mean():
    torch.manual_seed(0)
    q = VQ(2, 1, ema_decay=0.5)
    q.codebook.data = torch.tensor([[-1.0], [1.0]])
    q.ema_sum.copy_(q.codebook.data)
    z = torch.tensor([[-3.0], [-3.0], [3.0]])
    for _ in range(40):
        q(z)
    # EMA converges to the mean of each cluster (up to the tiny Laplace smoothing).
    torch.testing.assert_close(q.codebook.data, torch.tensor([[-3.0], [3.0]]), atol=1e-3, rtol=0)
    assert not q.codebook.requires_grad
