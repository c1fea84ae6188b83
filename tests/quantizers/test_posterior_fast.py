"""The fused soft-assignment kernel against naive references, chunking and memory."""

import math

import pytest
import torch

from softvq import SoftVQ
from softvq.quantizers import posterior
from softvq.quantizers.posterior import _FusedSoftAssign, _fused_plan, _reference_soft_assign, soft_assign

SHAPES = ["shared", "per_code", "predicted"]
NORMS = ["gaussian", "reference", "none"]
COEF = {"gaussian": None, "reference": 1.0, "none": 0.0}


def _inputs(shape, n=9, k=6, d=4, dtype=torch.float64, seed=0, prior=True, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=g, dtype=dtype)
    e = torch.randn(k, d, generator=g, dtype=dtype)
    ls = {
        "shared": lambda: torch.tensor(0.1, dtype=dtype),
        "per_code": lambda: scale * torch.randn(k, generator=g, dtype=dtype),
        "predicted": lambda: scale * torch.randn(n, k, generator=g, dtype=dtype),
    }[shape]()
    lp = torch.log_softmax(torch.randn(k, generator=g, dtype=dtype), -1) if prior else None
    return z, e, ls, lp


def naive(z, e, ls, lp, normalization="gaussian"):
    """Bayes' rule written out with an (N, K, d) difference tensor."""
    n, d = z.shape
    k = e.shape[0]
    sq = ((z[:, None, :] - e[None, :, :]) ** 2).sum(-1)  # (N, K)
    ls_full = ls.expand(n, k) if ls.dim() < 2 else ls
    logits = -sq / (2.0 * torch.exp(2.0 * ls_full))
    if ls.dim() > 0:
        logits = logits + {"gaussian": -d * ls_full, "reference": ls_full, "none": 0.0 * ls_full}[normalization]
    if lp is not None:
        logits = logits + lp
    probs = torch.softmax(logits, -1)
    return probs, probs @ e


def _fused(z, e, ls, lp, normalization="gaussian", rows=1000, bounds=(None, None)):
    coef = posterior._norm_coef(normalization, z.shape[1])
    probs, z_hat, _ = _FusedSoftAssign.apply(z, e, ls, lp, coef, bounds[0], bounds[1], rows)
    return probs, z_hat


def _grads(fn, tensors, seed=1):
    outs = fn(*tensors)
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
    loss = sum((o * w).sum() for o, w in zip(outs, weights))
    grads = torch.autograd.grad(loss, [t for t in tensors if t is not None and t.requires_grad])
    return [o.detach() for o in outs], grads


@pytest.mark.parametrize("prior", [True, False])
@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_fused_float64(shape, normalization, prior):
    z, e, ls, lp = _inputs(shape, prior=prior)
    tensors = [t.requires_grad_() if t is not None else None for t in (z, e, ls, lp)]
    assert _fused_plan(z, e, ls, None, None) is not None

    def f(z, e, ls, lp):
        return _fused(z, e, ls, lp, normalization, rows=4)

    assert torch.autograd.gradcheck(f, tuple(tensors))


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck_fused_with_bounds(shape):
    """Log-sigmas on both sides of the bounds: the gradient is torch.clamp's."""
    z, e, ls, lp = _inputs(shape, scale=1.5, seed=4)
    if shape == "shared":
        ls = torch.tensor(1.2, dtype=torch.float64)
    tensors = [t.requires_grad_() for t in (z, e, ls, lp)]

    def f(z, e, ls, lp):
        return _fused(z, e, ls, lp, rows=4, bounds=(-0.7, 0.9))

    assert torch.autograd.gradcheck(f, tuple(tensors))
    ref = _grads(lambda z, e, ls, lp: naive(z, e, ls.clamp(-0.7, 0.9), lp), tensors)
    got = _grads(f, tensors)
    for a, b in zip(ref[0] + list(ref[1]), got[0] + list(got[1])):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("normalization", NORMS)
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_matches_naive_and_reference_values_and_grads(shape, normalization):
    z, e, ls, lp = _inputs(shape, n=40, k=13, d=7, seed=2)
    tensors = [t.requires_grad_() for t in (z, e, ls, lp)]
    want = _grads(lambda *t: naive(*t, normalization), tensors)
    fused = _grads(lambda *t: _fused(*t, normalization, rows=7), tensors)
    ref = _grads(lambda *t: _reference_soft_assign(*t, normalization, rows=7), tensors)
    for got in (fused, ref):
        for a, b in zip(want[0] + list(want[1]), got[0] + list(got[1])):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("shape", SHAPES)
def test_only_one_output_used(shape):
    """Gradients when only probs (or only z_hat) reach the loss."""
    z, e, ls, lp = _inputs(shape, seed=5)
    tensors = [t.requires_grad_() for t in (z, e, ls, lp)]
    for which in (0, 1):
        want = torch.autograd.grad(naive(*tensors)[which].pow(2).sum(), tensors)
        got = torch.autograd.grad(_fused(*tensors, rows=4)[which].pow(2).sum(), tensors)
        for a, b in zip(want, got):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("shape", SHAPES)
def test_straight_through_style_call_skips_z(shape):
    """Detached z (straight-through mode): codebook, sigma and prior still get gradients."""
    z, e, ls, lp = _inputs(shape, seed=6)
    e, ls, lp = (t.requires_grad_() for t in (e, ls, lp))
    want = torch.autograd.grad(naive(z, e, ls, lp)[1].sum() * 3, [e, ls, lp])
    got = torch.autograd.grad(soft_assign(z, e, ls, lp, chunk_size=4)[1].sum() * 3, [e, ls, lp])
    for a, b in zip(want, got):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_chunked_equals_unchunked(shape, dtype):
    z, e, ls, lp = _inputs(shape, n=103, k=37, d=8, dtype=dtype, seed=3)
    tensors = [t.requires_grad_() for t in (z, e, ls, lp)]
    whole = _grads(lambda *t: soft_assign(*t, chunk_size=10_000), tensors)
    for rows in (1, 7, 50, 102):
        part = _grads(lambda *t: soft_assign(*t, chunk_size=rows), tensors)
        for a, b in zip(whole[0] + list(whole[1]), part[0] + list(part[1])):
            torch.testing.assert_close(a, b)


def test_default_chunk_rows_bound_the_chunk():
    rows = posterior.default_chunk_rows
    cap, low, most = posterior.CHUNK_ELEMENTS, posterior.MIN_CHUNK_ROWS, posterior.MAX_CHUNKS
    for n, k in [(4096, 512), (16384, 4096), (1024, 65536), (10, 3), (10**6, 8)]:
        r = rows(k, n)
        assert r >= low
        assert r * k <= max(cap, low * k, -(-n // most) * k)
        assert -(-n // r) <= most
    assert rows(10**9) == low


@pytest.mark.parametrize("shape", SHAPES)
def test_indices_are_argmax_of_probs(shape):
    z, e, ls, lp = _inputs(shape, n=50, k=20, d=3, dtype=torch.float32)
    probs, _, idx = soft_assign(z, e, ls, lp, chunk_size=8, return_indices=True)
    assert torch.equal(idx, probs.argmax(-1))


def _saved_bytes(fn):
    """Bytes of the distinct storages autograd saves while ``fn`` runs."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


@pytest.mark.parametrize("gradient", ["straight_through", "exact"])
@pytest.mark.parametrize("mode", ["fixed", "learned", "learned_per_code", "predicted"])
def test_graph_saves_order_nk_not_nkd(mode, gradient):
    n, k, d = 256, 128, 32
    q = SoftVQ(k, d, sigma=mode, gradient=gradient, prior="learned")
    z = torch.randn(n, d, requires_grad=True)
    ls = torch.zeros(n, k, requires_grad=True) if mode == "predicted" else None
    assert _fused_plan(z, q.codebook, torch.zeros(()) if ls is None else ls, None, None) is not None
    nbytes, _ = _saved_bytes(lambda: q(z, ls))
    small = 4 * (8 * n * d + 8 * k * d + 8 * n + 8 * k)  # z, z_hat, codebook copies, vectors
    inputs = 4 * n * k if mode == "predicted" else 0  # the caller's log-sigma tensor itself
    assert nbytes <= 4 * n * k + inputs + small, nbytes  # probs, once
    assert nbytes < 4 * n * k * d / 8


def _peak_bytes(fn):
    """Peak of live bytes allocated (net of frees) while ``fn`` runs, from the profiler."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(node):
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("gradient", ["straight_through", "exact"])
@pytest.mark.parametrize("mode", ["learned", "learned_per_code", "predicted"])
def test_peak_memory_of_a_step_is_about_one_probs_tensor(mode, gradient):
    """Forward + backward allocate the (N, K) probs, small chunk buffers and O(N d) vectors
    (plus, for a predicted log-sigma, its (N, K) gradient): nothing of size N K d."""
    n, k, d, rows = 1024, 512, 32, 64
    q = SoftVQ(k, d, sigma=mode, gradient=gradient, chunk_size=rows)
    z = torch.randn(n, d, requires_grad=True)
    ls = torch.zeros(n, k, requires_grad=True) if mode == "predicted" else None

    def step():
        out = q(z, ls)
        (out.z_q.sum() + out.loss).backward()

    step()
    peak = _peak_bytes(step)
    nk = n * k * 4
    budget = nk * (2 if mode == "predicted" else 1) + 6 * rows * k * 4 + 16 * n * d * 4
    assert 0 < peak <= budget, (peak / nk)


@pytest.mark.parametrize("gradient", ["straight_through", "exact"])
@pytest.mark.parametrize("mode", ["fixed", "learned", "learned_per_code", "predicted"])
def test_softvq_fused_agrees_with_reference_path(mode, gradient, monkeypatch):
    """The whole layer, with the kernel and with the reference implementation."""
    torch.manual_seed(0)
    q = SoftVQ(11, 5, sigma=mode, gradient=gradient, prior="learned", init_sigma=0.7).double()
    q.prior_logits.data.normal_()
    z = torch.randn(30, 5, dtype=torch.float64, requires_grad=True)
    ls = (0.3 * torch.randn(30, 11, dtype=torch.float64)).requires_grad_() if mode == "predicted" else None
    params = [p for p in q.parameters()] + [z] + ([ls] if ls is not None else [])

    def run():
        out = q(z, ls)
        loss = out.z_q.pow(2).sum() + out.loss + out.probs[:, 0].sum()
        return [out.z_q.detach(), out.probs.detach(), out.indices], torch.autograd.grad(loss, params)

    fused = run()
    monkeypatch.setattr(posterior, "_fused_plan", lambda *a: None)
    ref = run()
    for a, b in zip(fused[0] + list(fused[1]), ref[0] + list(ref[1])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("shape", SHAPES)
def test_extreme_inputs_take_the_reference_path_and_stay_finite(shape):
    k, d = 6, 3
    for zscale, ls_value in [(3e38, 0.0), (1e7, 0.0), (1.0, math.log(1e-7)), (1e30, math.log(1e-6))]:
        z = (torch.rand(5, d) * 2 - 1) * zscale
        e = torch.randn(k, d)
        ls = torch.full({"shared": (), "per_code": (k,), "predicted": (5, k)}[shape], ls_value)
        assert _fused_plan(z, e, ls, None, None) is None
        z.requires_grad_()
        e.requires_grad_()
        ls.requires_grad_()
        probs, z_hat = soft_assign(z, e, ls)
        assert torch.isfinite(probs).all() and torch.isfinite(z_hat).all()
        (z_hat.sum() + probs.sum()).backward()
        for t in (z, e, ls):
            assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_near_the_fused_boundary_both_paths_agree(shape):
    """Just inside the fused region, where logits are huge: same values as the reference."""
    k, d = 8, 4
    z = torch.randn(20, d, dtype=torch.float64) * 30
    e = torch.randn(k, d, dtype=torch.float64) * 30
    power = 1.0 if shape == "shared" else 2.0
    s_max = z.abs().amax(1).clamp_min(1).max().log().item()
    ls_value = (power * s_max - posterior.LOG_SCALE_MAX) / 2 + 1e-3  # cap just not binding
    ls = torch.full({"shared": (), "per_code": (k,), "predicted": (20, k)}[shape], ls_value, dtype=torch.float64)
    assert _fused_plan(z, e, ls, None, None) is not None
    ls_lower = ls - 0.01
    assert _fused_plan(z, e, ls_lower, None, None) is None
    a = _fused(z, e, ls, None)
    b = _reference_soft_assign(z, e, ls, None, "gaussian", 1000)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert torch.isfinite(a[0]).all() and torch.isfinite(a[1]).all()


def test_float32_agrees_with_float64_naive():
    z, e, ls, lp = _inputs("per_code", n=300, k=64, d=16, seed=7)
    want = naive(z, e, ls, lp)
    got = soft_assign(z.float(), e.float(), ls.float(), lp.float())
    for a, b in zip(want, got):
        torch.testing.assert_close(b.double(), a, rtol=1e-4, atol=1e-5)


def test_empty_batch():
    z, e = torch.zeros(0, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    probs, z_hat = soft_assign(z, e, torch.tensor(0.0))
    assert probs.shape == (0, 4) and z_hat.shape == (0, 3)
    (z_hat.sum() + probs.sum()).backward()
    assert e.grad is not None and torch.equal(e.grad, torch.zeros_like(e))


def test_bad_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        soft_assign(torch.randn(3, 2), torch.randn(4, 2), torch.tensor(0.0), chunk_size=0)
    with pytest.raises(ValueError, match="codebook"):
        soft_assign(torch.randn(3, 2), torch.randn(4, 3), torch.tensor(0.0))
