"""Extreme inputs stay finite; invalid arguments raise ValueErrors that name the argument."""

import math

import pytest
import torch

from softvq import VQ, SoftVQ

MODES = ["fixed", "learned", "learned_per_code", "predicted"]


@pytest.mark.parametrize("gradient", ["straight_through", "exact"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e6, 1e15, 1e30, 3e38])
def test_extreme_inputs_give_finite_outputs_and_gradients(mode, gradient, scale):
    torch.manual_seed(0)
    q = SoftVQ(8, 4, sigma=mode, gradient=gradient, init_sigma=1e-3, prior="learned")
    z = ((torch.rand(6, 4) * 2 - 1) * scale).requires_grad_()  # finite even at 3e38
    ls = torch.tensor([[-1e30, 1e30, 0.0, -50.0, 50.0, 3e38, -3e38, 1.0]]).expand(6, 8).clone().requires_grad_() if mode == "predicted" else None
    out = q(z, ls)
    for name in ("z_q", "probs"):
        assert torch.isfinite(getattr(out, name)).all(), name
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(6))
    (out.z_q.sum() + out.probs.sum() + (out.loss if scale < 1e18 else 0)).backward()
    assert torch.isfinite(z.grad).all()
    for p in q.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    if ls is not None:
        assert torch.isfinite(ls.grad).all()
    if scale < 1e18:  # the losses themselves are finite while ||z||^2 fits in float32
        assert torch.isfinite(out.loss)


def test_extreme_input_still_picks_the_aligned_codeword():
    q = SoftVQ(2, 2, sigma="fixed", init_sigma=1.0).eval()
    q.codebook.data = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = q(torch.tensor([[1e30, 0.0], [0.0, 1e30]]))
    assert out.indices.tolist() == [0, 1]


def test_extreme_codebook_scale_with_tiny_sigma():
    q = SoftVQ(4, 3, sigma="learned_per_code", init_sigma=1e-4)
    q.codebook.data *= 1e8
    out = q(torch.randn(5, 3) * 1e8)
    assert torch.isfinite(out.z_q).all() and torch.isfinite(out.probs).all()


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_codes": 0}, "num_codes"),
        ({"num_codes": -3}, "num_codes"),
        ({"num_codes": 2.5}, "num_codes"),
        ({"code_dim": 0}, "code_dim"),
        ({"init_sigma": 0.0}, "init_sigma"),
        ({"init_sigma": -1.0}, "init_sigma"),
        ({"init_sigma": float("nan")}, "init_sigma"),
        ({"init_sigma": float("inf")}, "init_sigma"),
        ({"sigma": "magic"}, "sigma"),
        ({"prior": "zipf"}, "prior"),
        ({"gradient": "reinforce"}, "gradient"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"codebook_weight": float("nan")}, "codebook_weight"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, name):
    args = {"num_codes": 4, "code_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        SoftVQ(args.pop("num_codes"), args.pop("code_dim"), **args)


def test_vq_invalid_arguments():
    with pytest.raises(ValueError, match="num_codes"):
        VQ(0, 2)
    with pytest.raises(ValueError, match="ema_decay"):
        VQ(4, 2, ema_decay=1.5)


@pytest.mark.parametrize("quantizer", [SoftVQ(4, 3), VQ(4, 3)])
def test_wrong_last_dimension_and_dtype(quantizer):
    with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., code_dim=3\)"):
        quantizer(torch.randn(5, 4))
    with pytest.raises(ValueError, match="floating-point"):
        quantizer(torch.ones(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="torch.Tensor"):
        quantizer([[0.0, 0.0, 0.0]])


def test_predicted_mode_checks_log_sigma():
    q = SoftVQ(4, 3, sigma="predicted")
    with pytest.raises(ValueError, match="log_sigma .* required"):
        q(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"log_sigma must have shape \(5, 4\)"):
        q(torch.randn(5, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="only accepted with sigma='predicted'"):
        SoftVQ(4, 3)(torch.randn(5, 3), torch.randn(5, 4))


def test_sigma_floor_applies():
    q = SoftVQ(4, 3, sigma="learned", init_sigma=1.0, min_sigma=0.1)
    q.log_sigma.data.fill_(math.log(1e-9))
    assert q.sigma.item() == pytest.approx(0.1)
