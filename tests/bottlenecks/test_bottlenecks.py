"""The bottleneck zoo behind one interface."""

import pytest
import torch

from softvq import BOTTLENECKS, TrainConfig, build_bottleneck
from softvq.bottlenecks import Gaussian, Identity, InformationDropout, Quantized
from softvq.quantizers import SoftVQ, VQ


def _opts(**kw):
    return TrainConfig(latent_dim=8, num_codes=5, **kw)


@pytest.mark.parametrize("name", list(BOTTLENECKS))
def test_every_bottleneck_has_the_same_contract(name):
    torch.manual_seed(0)
    b = build_bottleneck(name, 12, _opts(groups=2))
    h = torch.randn(7, 12)
    out = b(h)
    assert out.z_dec.shape == (7, 8) and out.latent.shape == (7, 8)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    (out.z_dec.sum() + out.loss).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in b.parameters())
    b.eval()
    a1, a2 = b(h).latent, b(h).latent
    torch.testing.assert_close(a1, a2)  # deterministic downstream latent in eval mode
    if name in ("vq", "softvq"):
        assert out.probs.shape == (7, 2, 5) and out.indices.shape == (7, 2)
        torch.testing.assert_close(out.probs.sum(-1), torch.ones(7, 2))


def test_unknown_bottleneck_lists_choices():
    with pytest.raises(ValueError, match="choose from ae, dae, vae, infodrop, vq, softvq"):
        build_bottleneck("pca", 4, _opts())


def test_wrong_feature_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"in_features=12"):
        build_bottleneck("ae", 12, _opts())(torch.randn(3, 11))


def test_vae_uses_mean_in_eval_and_kl_matches_closed_form():
    torch.manual_seed(0)
    b = Gaussian(4, 3, kl_weight=2.0)
    h = torch.randn(5, 4)
    mu, logvar = b.mean(h), b.logvar(h)
    out = b(h)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1).mean()
    torch.testing.assert_close(out.loss, 2.0 * kl)
    torch.testing.assert_close(out.latent, mu)
    assert not torch.allclose(out.z_dec, mu)  # a sample in training
    b.eval()
    torch.testing.assert_close(b(h).z_dec, mu)  # the mean in evaluation


def test_vae_kl_is_zero_at_standard_normal():
    b = Gaussian(2, 3)
    for lin in (b.mean, b.logvar):
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)
    assert b(torch.randn(4, 2)).logs["kl"].item() == pytest.approx(0.0, abs=1e-7)


def test_dae_noise_only_in_training():
    b = Identity(4, 3, noise_std=0.5)
    h = torch.randn(6, 4)
    out = b(h)
    assert (out.z_dec - out.latent).std().item() == pytest.approx(0.5, rel=0.6)
    b.eval()
    torch.testing.assert_close(b(h).z_dec, b(h).latent)


def test_infodrop_penalty_and_noise():
    torch.manual_seed(0)
    b = InformationDropout(4, 3, weight=1.0, alpha_max=0.7)
    torch.nn.init.zeros_(b.alpha_head.weight)
    torch.nn.init.zeros_(b.alpha_head.bias)  # alpha = 0.7 * sigmoid(0) = 0.35
    out = b(torch.randn(5, 4))
    assert out.logs["alpha"].item() == pytest.approx(0.35)
    assert out.loss.item() == pytest.approx(-torch.log(torch.tensor(0.5)).item(), rel=1e-6)
    b.eval()
    o = b(torch.randn(5, 4))
    torch.testing.assert_close(o.z_dec, o.latent)


def test_quantized_groups_share_one_codebook_and_predicted_head():
    q = SoftVQ(6, 4, sigma="predicted")
    b = Quantized(10, 8, q, groups=2)
    assert b.sigma_head.out_features == 12
    out = b(torch.randn(3, 10))
    assert out.probs.shape == (3, 2, 6)
    with pytest.raises(ValueError, match="code_dim"):
        Quantized(10, 8, VQ(6, 3), groups=2)
    with pytest.raises(ValueError, match="divisible"):
        Quantized(10, 9, VQ(6, 3), groups=2)


def test_factored_sigma_head_is_the_product_of_two_maps():
    torch.manual_seed(0)
    b = Quantized(10, 8, SoftVQ(6, 4, sigma="predicted"), groups=2, sigma_head_rank=3)
    down, up = b.sigma_head
    assert down.weight.shape == (3, 10) and down.bias is None and up.weight.shape == (12, 3)
    assert sum(p.numel() for p in b.sigma_head.parameters()) == 3 * 10 + 12 * 3 + 12  # not 10 * 12 + 12
    # its log-sigmas are those of a full head whose weight is up @ down
    full = Quantized(10, 8, SoftVQ(6, 4, sigma="predicted"), groups=2)
    full.load_state_dict({**{k: v for k, v in b.state_dict().items() if not k.startswith("sigma_head")},
                          "sigma_head.weight": up.weight @ down.weight, "sigma_head.bias": up.bias})
    h = torch.randn(5, 10)
    torch.testing.assert_close(b(h).probs, full(h).probs)
    with pytest.raises(ValueError, match="sigma_head_rank must be a positive integer, got 0"):
        Quantized(10, 8, SoftVQ(6, 4, sigma="predicted"), groups=2, sigma_head_rank=0)
    # from a config: 0 (the default) is the full head
    assert isinstance(build_bottleneck("softvq", 10, _opts(sigma="predicted")).sigma_head, torch.nn.Linear)
    assert len(build_bottleneck("softvq", 10, _opts(sigma="predicted", sigma_head_rank=2)).sigma_head) == 2


def test_downstream_pre_and_post():
    torch.manual_seed(0)
    pre = Quantized(4, 2, VQ(3, 2), downstream="pre").eval()
    post = Quantized(4, 2, VQ(3, 2), downstream="post").eval()
    post.load_state_dict(pre.state_dict())
    h = torch.randn(5, 4)
    torch.testing.assert_close(pre(h).latent, pre.proj(h))
    torch.testing.assert_close(post(h).latent, pre.quantizer.codebook[pre(h).indices[:, 0]].detach())
