"""The Bayesian posterior over codewords (METHOD section 2), as plain functions.

Noisy-channel model: ``z = e_k + n`` with ``k ~ pi`` and ``n ~ N(0, sigma_k^2 I)``::

    logit_k = log pi_k - ||z - e_k||^2 / (2 sigma_k^2) - d log sigma_k
    p(k | z) = softmax_k(logit_k),    z_hat = sum_k p(k | z) e_k

Numerics: one GEMM for the logits and one (``p @ E``) for the posterior mean; never a
``(N, K, d)`` tensor. Each row of ``z`` is divided by its own scale
``s = max(1, max_i |z_i|)`` before the GEMM, so squared norms cannot overflow for any
finite input, and every ``1/sigma^2``-type factor is capped at ``exp(LOG_SCALE_MAX)``.
Both are exact rewrites for ordinary inputs; they only matter for absurd ones.

Two implementations compute the same function:

- :func:`posterior_logits` (+ softmax under autograd) is the readable reference. It
  handles every input, including the absurd ones where the row scaling and the cap bind.
- A fused kernel (:class:`_FusedSoftAssign`, a ``torch.autograd.Function``) is used
  whenever neither the row scaling nor the cap changes the result (see
  :func:`_fused_plan`): ``|z|, |e| <= FUSED_ABS_MAX``, ``log s - 2 log sigma`` (shared
  sigma) or ``2 log s - 2 log sigma`` (otherwise) at or below ``LOG_SCALE_MAX`` for every
  entry, and ``log sigma <= FUSED_LOG_SIGMA_MAX``. It works through the rows in chunks
  (:func:`default_chunk_rows`), folds the norm, sigma, normalization and prior terms into
  the logit GEMM, writes softmax and argmax straight into the outputs while a chunk is in
  cache, saves only the inputs, ``probs`` and ``z_hat`` for backward, and computes the
  gradients w.r.t. ``z``, the codebook, the log-sigmas and the log-prior analytically.
  Memory: the ``(N, K)`` output plus a few ``(rows, K)`` chunk buffers (plus the
  ``(N, K)`` gradient of a predicted log-sigma); time: the GEMMs plus about four passes
  over ``(N, K)`` (softmax, argmax, one multiply in backward) for a shared or per-codeword
  sigma.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.autograd.function import once_differentiable

Normalization = Literal["gaussian", "reference", "none"]

#: Cap on log(scale factor) applied to distances: exp(28) ~ 1.4e12. It only binds when
#: |z| / sigma > ~1e6, where the posterior is one-hot anyway, and keeps logits and their
#: gradients (factor x upstream gradient) finite.
LOG_SCALE_MAX = 28.0

#: Entries of ``z`` and of the codebook up to this magnitude take the fused kernel, which
#: skips the row scaling: squared norms stay below ``d * 2^42``, far from overflow.
FUSED_ABS_MAX = float(2**20)

#: ... and log-sigmas up to this value (sigma ~ 1e13): ``sigma^2`` stays finite.
FUSED_LOG_SIGMA_MAX = 30.0

#: Default chunking (``chunk_size=None``): about ``CHUNK_ELEMENTS`` ``rows x K`` elements
#: (4 MiB of float32) per chunk, at least ``MIN_CHUNK_ROWS`` rows (the GEMMs stay
#: efficient), and at most ``MAX_CHUNKS`` chunks per call (each chunk launches a dozen or
#: more operators, and on a busy machine every parallel operator can wait for a time
#: slice). A chunk buffer thus holds at most
#: ``max(CHUNK_ELEMENTS, MIN_CHUNK_ROWS * K, ceil(N / MAX_CHUNKS) * K)`` elements. The
#: backward of a predicted log-sigma, which writes an ``(N, K)`` gradient, keeps its chunks
#: to ``ceil(N / MAX_CHUNKS)`` rows at most.
CHUNK_ELEMENTS = 1 << 20
MIN_CHUNK_ROWS = 128
MAX_CHUNKS = 16


def default_chunk_rows(num_codes: int, batch: int | None = None) -> int:
    """Rows per chunk used when ``chunk_size`` is None (see ``CHUNK_ELEMENTS``)."""
    rows = max(MIN_CHUNK_ROWS, CHUNK_ELEMENTS // max(int(num_codes), 1))
    if batch is not None:
        rows = max(rows, -(-int(batch) // MAX_CHUNKS))
    return rows


def _row_scale(z: torch.Tensor) -> torch.Tensor:
    """(N, 1) detached per-row scale ``max(1, max_i |z_i|)``."""
    return z.detach().abs().amax(dim=-1, keepdim=True).clamp_min(1.0)


def posterior_logits(
    z: torch.Tensor,
    codebook: torch.Tensor,
    log_sigma: torch.Tensor,
    log_prior: torch.Tensor | None = None,
    normalization: Normalization = "gaussian",
) -> torch.Tensor:
    """Unnormalized log-posterior over codewords (the reference implementation).

    Args:
        z: ``(N, d)`` latents.
        codebook: ``(K, d)`` codewords.
        log_sigma: natural log of the noise std, shape ``()`` (shared), ``(K,)`` (per
            codeword) or ``(N, K)`` (predicted per input); already floored.
        log_prior: ``(K,)`` log prior probabilities, or None for uniform.
        normalization: ``"gaussian"`` adds the correct ``-d log sigma_k``;
            ``"reference"`` adds ``+log sigma_k`` as the authors' notebooks did;
            ``"none"`` adds nothing. Irrelevant for a shared sigma.

    Returns:
        ``(N, K)`` logits; ``softmax(dim=-1)`` gives ``p(k | z)``.
    """
    s = _row_scale(z)
    zs = z / s
    cross = zs @ codebook.t()  # (N, K) = z.e / s
    e_sq = codebook.pow(2).sum(-1)  # (K,)
    log_s = s.log()
    if log_sigma.dim() == 0:
        # Shared sigma: ||z||^2 is constant over k and drops out of the softmax, and so
        # does the normalization term: logit = (z.e - ||e||^2 / 2) / sigma^2.
        factor = torch.exp((log_s - 2.0 * log_sigma).clamp(max=LOG_SCALE_MAX))  # s / sigma^2
        logits = (cross - 0.5 * e_sq / s) * factor
    else:
        # ||z - e||^2 / s^2 by expansion, clamped at 0 against rounding.
        dist = (zs.pow(2).sum(-1, keepdim=True) - 2.0 * cross / s + e_sq / s.pow(2)).clamp_min(0.0)
        factor = torch.exp((2.0 * log_s - 2.0 * log_sigma).clamp(max=LOG_SCALE_MAX))  # s^2 / sigma^2
        logits = -0.5 * dist * factor
        d = z.shape[-1]
        if normalization == "gaussian":
            logits = logits - d * log_sigma
        elif normalization == "reference":
            logits = logits + log_sigma
    if log_prior is not None:
        logits = logits + log_prior
    return logits


def _norm_coef(normalization: str, d: int) -> float:
    """Coefficient of ``log sigma_k`` in the logit (non-shared sigma)."""
    return {"gaussian": -float(d), "reference": 1.0, "none": 0.0}[normalization]


def _chunks(n: int, rows: int):
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


def _clamp(t: torch.Tensor, lo: float | None, hi: float | None) -> torch.Tensor:
    return t if lo is None and hi is None else t.clamp(lo, hi)


def _pass_mask(t: torch.Tensor, lo: float | None, hi: float | None) -> torch.Tensor | None:
    """Where ``clamp(t, lo, hi)`` passes the gradient (as torch.clamp does: lo <= t <= hi)."""
    if lo is None and hi is None:
        return None
    m = torch.ones_like(t, dtype=torch.bool)
    if lo is not None:
        m &= t >= lo
    if hi is not None:
        m &= t <= hi
    return m


def _finish_chunk(logits, e, probs, z_hat, indices, rev) -> None:  # noqa: ANN001
    """softmax -> probs, argmax -> indices, probs @ E -> z_hat, while the chunk is in cache.

    ``rev`` is ``[K, K-1, ..., 1]`` in probs' dtype (or None: use ``torch.argmax``). The
    first maximal index is ``K - max_k(rev_k [p_k == max p])``: four fast vectorized passes
    (reusing the logits buffer), about 2-3x quicker than ``torch.argmax`` on CPU, and the
    same result, ties included.
    """
    torch.softmax(logits, 1, out=probs)
    if rev is None:
        torch.argmax(probs, 1, out=indices)
    else:
        flags = torch.ge(probs, probs.amax(1, keepdim=True), out=logits)  # 1 at the row maxima
        indices.copy_(rev.shape[0] - flags.mul_(rev).amax(1))
    torch.mm(probs, e, out=z_hat)


def _reversed_positions(k: int, like: torch.Tensor) -> torch.Tensor | None:
    """``[K, ..., 1]`` for :func:`_finish_chunk`, when the dtype holds these integers exactly."""
    exact = {torch.float32: 2**24, torch.float64: 2**53}.get(like.dtype, 0)
    return torch.arange(k, 0, -1, dtype=like.dtype, device=like.device) if k <= exact else None


def _augmented(z: torch.Tensor) -> torch.Tensor:
    """``[z, 1, ||z||^2]`` of shape ``(N, d + 2)``: folds norms and biases into one GEMM."""
    return torch.cat([z, z.new_ones(z.shape[0], 1), (z * z).sum(1, keepdim=True)], 1)


class _FusedSoftAssign(torch.autograd.Function):
    """``(probs, z_hat, indices)`` of the posterior with analytic, chunked forward and backward.

    Valid when neither the row scaling nor the LOG_SCALE_MAX cap of :func:`posterior_logits`
    binds (checked by :func:`_fused_plan`). With ``w = sigma^-2``, ``c`` the normalization
    coefficient and ``a = [z, 1, |z|^2]``, the logits of a chunk are one GEMM:

    - shared:     ``L = z (w E)^T + (lp - w |e|^2 / 2)``                       (addmm)
    - per code:   ``L = a [w E, lp - w |e|^2 / 2 + c log sigma, -w / 2]^T``   (mm)
    - predicted:  ``L = w * (a [E, -|e|^2 / 2, -1/2]^T) + c log sigma + lp``   (mm, 3-4 passes)

    then softmax -> ``probs``, argmax -> ``indices`` and ``probs E`` -> ``z_hat``.

    Backward: with ``G = g_probs + g_zhat E^T`` and ``r = rowsum(P * G)``
    (``= g_zhat . z_hat`` without ``g_probs``), the logit gradient ``gL = P * (G - r)`` is
    one ``addmm`` (bias ``-r``) and one in-place multiply. Everything else comes from GEMMs
    against ``gL``: ``gL^T z`` and the column sums ``gL^T 1`` (and ``gL^T |z|^2`` per code)
    give the codebook, sigma and prior gradients of the shared and per-code cases, e.g.
    ``dlog sigma_k = w_k (sum_n gL_nk |z_n|^2 - 2 e_k . sum_n gL_nk z_n + |e_k|^2 sum_n gL_nk)
    + c sum_n gL_nk``, with no further ``(N, K)`` pass; ``P^T g_zhat`` adds the codebook
    gradient through ``z_hat``; ``gL (w E)`` (exact mode) gives ``dz``. A predicted
    log-sigma needs ``dlog sigma = gL (w |z - e|^2 + c)``: its chunk recomputes the
    distances (one GEMM) inside the output ``(N, K)`` gradient rather than keeping them.
    Saved for backward: the inputs, ``probs`` and ``z_hat``.
    """

    @staticmethod
    def forward(ctx, z, codebook, log_sigma, log_prior, coef, lo, hi, rows):  # noqa: ANN001
        ctx.set_materialize_grads(False)
        n, d = z.shape
        k = codebook.shape[0]
        e = codebook
        e_sq = (e * e).sum(1)
        mode = log_sigma.dim()
        m = min(rows, n)
        if mode == 0:
            w = torch.exp(-2.0 * _clamp(log_sigma, lo, hi))
            b = e * w
            bias = e_sq * (-0.5 * w)
            if log_prior is not None:
                bias = bias + log_prior
        elif mode == 1:
            ls = _clamp(log_sigma, lo, hi)
            w = torch.exp(-2.0 * ls)
            bias = -0.5 * w * e_sq + coef * ls
            if log_prior is not None:
                bias = bias + log_prior
            b = torch.cat([e * w[:, None], bias[:, None], (-0.5 * w)[:, None]], 1)
        else:
            b = torch.cat([e, (-0.5 * e_sq)[:, None], e.new_full((k, 1), -0.5)], 1)  # a b^T = -|z - e|^2 / 2
            wbuf = z.new_empty(m, k)
            tbuf = z.new_empty(m, k) if lo is not None or hi is not None else None
            base_buf = z.new_empty(m, k) if coef else None
        a = _augmented(z) if mode else None
        probs = z.new_empty(n, k)
        z_hat = z.new_empty(n, d)
        indices = torch.empty(n, dtype=torch.long, device=z.device)
        buf = z.new_empty(m, k)
        rev = _reversed_positions(k, z)
        for sl in _chunks(n, rows):
            rows_here = sl.stop - sl.start
            logits = buf[:rows_here]
            if mode == 0:
                torch.addmm(bias, z[sl], b.t(), out=logits)
            else:
                torch.mm(a[sl], b.t(), out=logits)
            if mode == 2:
                wk = wbuf[:rows_here]
                ls = log_sigma[sl] if tbuf is None else torch.clamp(log_sigma[sl], lo, hi, out=tbuf[:rows_here])
                torch.mul(ls, -2.0, out=wk).exp_()  # sigma^-2
                # logits = coef * log_sigma + log_prior - sigma^-2 |z - e|^2 / 2
                if coef:
                    base = base_buf[:rows_here]
                    if log_prior is not None:
                        torch.add(log_prior, ls, alpha=coef, out=base)
                    else:
                        torch.mul(ls, coef, out=base)
                    torch.addcmul(base, logits, wk, out=logits)
                elif log_prior is not None:
                    torch.addcmul(log_prior, logits, wk, out=logits)
                else:
                    logits.mul_(wk)
            _finish_chunk(logits, e, probs[sl], z_hat[sl], indices[sl], rev)
        ctx.save_for_backward(z, codebook, log_sigma, log_prior, probs, z_hat)
        ctx.coef, ctx.lo, ctx.hi, ctx.rows = coef, lo, hi, rows
        ctx.mark_non_differentiable(indices)
        return probs, z_hat, indices

    @staticmethod
    @once_differentiable
    def backward(ctx, g_probs, g_zhat, _g_indices):  # noqa: ANN001
        z, e, log_sigma, log_prior, probs, z_hat = ctx.saved_tensors
        need_z, need_e, need_ls, need_lp = ctx.needs_input_grad[:4]
        coef, lo, hi, rows = ctx.coef, ctx.lo, ctx.hi, ctx.rows
        n, d = z.shape
        k = e.shape[0]
        mode = log_sigma.dim()
        if g_probs is None and g_zhat is None:
            return (None,) * 8
        # r_n = sum_k p_nk (g_probs_nk + g_zhat_n . e_k), so that gL = P * (g_probs + g_zhat E^T - r)
        r = (g_zhat * z_hat).sum(1) if g_zhat is not None else z.new_zeros(n)
        if g_probs is not None:
            r += (g_probs * probs).sum(1)
        neg_r = r.neg_()[:, None]
        zsq = (z * z).sum(1) if mode else None
        if mode == 2 and need_ls:
            # The (N, K) log-sigma gradient is live too: keep the scratch to 1/MAX_CHUNKS of
            # it (results do not depend on the chunking).
            rows = min(rows, -(-n // MAX_CHUNKS))
        m = min(rows, n)
        abuf = None
        if mode == 2 and need_ls:  # chunks of [z, 1, |z|^2]; a full copy would cost an (N, d) tensor
            abuf = z.new_empty(m, d + 2)
            abuf[:, d] = 1.0
        ones = z.new_ones(m)
        gbuf = z.new_empty(m, k)
        gz = torch.empty_like(z) if need_z else None
        ptg = e.new_zeros(k, d) if need_e and g_zhat is not None else None
        # y = gL^T z, y1 = gL^T 1 (= column sums), yq = gL^T |z|^2; with gL scaled by sigma^-2 when predicted
        y = e.new_zeros(k, d) if need_e or (mode < 2 and need_ls) else None
        y1 = e.new_zeros(k) if need_e or need_lp or (mode < 2 and need_ls) else None
        yq = e.new_zeros(k) if mode == 1 and need_ls else None
        glp = e.new_zeros(k) if need_lp and mode == 2 else None
        gls = None
        if mode < 2:
            w = torch.exp(-2.0 * _clamp(log_sigma, lo, hi))
            bz = e * w if mode == 0 else torch.cat([e * w[:, None], w[:, None]], 1)
        else:
            bd = torch.cat([-2.0 * e, (e * e).sum(1, keepdim=True), e.new_ones(k, 1)], 1)  # a bd^T = |z - e|^2
            bz = torch.cat([e, e.new_ones(k, 1)], 1)
            tbuf = z.new_empty(m, k) if lo is not None or hi is not None else None
            if need_ls:
                gls = torch.empty_like(log_sigma)  # also the chunk scratch for sigma^-2
            else:
                wbuf = z.new_empty(m, k)
        for sl in _chunks(n, rows):
            rows_here = sl.stop - sl.start
            gl = gbuf[:rows_here]
            p = probs[sl]
            if g_zhat is not None:
                torch.addmm(neg_r[sl], g_zhat[sl], e.t(), out=gl)
                if g_probs is not None:
                    gl.add_(g_probs[sl])
            else:
                torch.add(g_probs[sl], neg_r[sl], out=gl)
            gl.mul_(p)  # gL, the gradient of the logits
            if ptg is not None:
                ptg.addmm_(p.t(), g_zhat[sl])
            if mode == 2:
                if glp is not None:
                    glp.addmv_(gl.t(), ones[:rows_here])
                ls = log_sigma[sl] if tbuf is None else torch.clamp(log_sigma[sl], lo, hi, out=tbuf[:rows_here])
                # dL/dlog_sigma = sigma^-2 |z - e|^2 + coef, so with gLw = sigma^-2 gL:
                # gls = gLw * (|z - e|^2 + coef sigma^2). gls's own chunk holds sigma^-2 first,
                # then coef sigma^2 + |z - e|^2 (the distance GEMM accumulates into it).
                wk = torch.mul(ls, -2.0, out=gls[sl] if need_ls else wbuf[:rows_here]).exp_()  # sigma^-2
                gl.mul_(wk)  # gLw = -2 x (gradient of the squared distances)
                if need_ls:
                    g = wk
                    a = abuf[:rows_here]
                    a[:, :d].copy_(z[sl])
                    a[:, d + 1].copy_(zsq[sl])
                    if coef:
                        g.reciprocal_().mul_(coef)  # finite: _fused_plan keeps log sigma <= FUSED_LOG_SIGMA_MAX
                        g.addmm_(a, bd.t())
                    else:
                        torch.mm(a, bd.t(), out=g)
                    g.mul_(gl)
                    if tbuf is not None:
                        g.masked_fill_(ls != log_sigma[sl], 0.0)
            if y is not None:
                y.addmm_(gl.t(), z[sl])
            if y1 is not None:
                y1.addmv_(gl.t(), ones[:rows_here])
            if yq is not None:
                yq.addmv_(gl.t(), zsq[sl])
            if need_z:
                if mode == 0:
                    torch.mm(gl, bz, out=gz[sl])
                else:
                    mz = gl @ bz
                    torch.addcmul(mz[:, :d], z[sl], mz[:, d:], value=-1.0, out=gz[sl])
        ge = None
        if mode < 2:
            if need_e:
                ge = (w * (y - e * y1[:, None])) if mode == 0 else w[:, None] * (y - e * y1[:, None])
            if need_lp:
                glp = y1
            if need_ls:
                e_sq = (e * e).sum(1)
                if mode == 0:
                    gls = -2.0 * w * ((e * y).sum() - 0.5 * (e_sq * y1).sum())
                else:
                    gls = w * (yq - 2.0 * (e * y).sum(1) + e_sq * y1) + coef * y1
                mask = _pass_mask(log_sigma, lo, hi)
                if mask is not None:
                    gls = gls * mask
        elif need_e:
            ge = y - e * y1[:, None]
        if need_e:
            ge = ptg if ge is None else (ge if ptg is None else ge + ptg)
        return gz, ge, gls, glp, None, None, None, None


def _fused_plan(
    z: torch.Tensor, codebook: torch.Tensor, log_sigma: torch.Tensor, lo: float | None, hi: float | None
) -> tuple[float | None, float | None] | None:
    """None where the reference path is needed, else the log-sigma bounds the kernel applies.

    The fused kernel computes exactly what :func:`posterior_logits` does when neither its
    row scaling nor its cap binds: ``|z|, |e| <= FUSED_ABS_MAX`` and the largest
    ``log(factor)`` stays at or below ``LOG_SCALE_MAX`` (checked with the smallest
    log-sigma, which is conservative for a predicted one), and ``log sigma <=
    FUSED_LOG_SIGMA_MAX``. Bounds that no entry reaches are dropped (clamping would be the
    identity, with the same gradient).
    """
    if z.dtype not in (torch.float32, torch.float64) or codebook.dtype != z.dtype:
        return None
    if z.shape[0] == 0 or z.shape[1] == 0 or codebook.shape[0] == 0:
        return None
    ls = log_sigma.detach()
    raw_min, raw_max = torch.aminmax(ls) if ls.dim() else (ls, ls)
    ls_min, ls_max = _clamp(raw_min, lo, hi), _clamp(raw_max, lo, hi)
    zmax = torch.stack(torch.aminmax(z.detach())).abs().amax()  # max |z| without an |z| copy
    emax = torch.stack(torch.aminmax(codebook.detach())).abs().amax()
    power = 1.0 if ls.dim() == 0 else 2.0
    exponent = power * zmax.clamp_min(1.0).log() - 2.0 * ls_min  # largest log(factor)
    ok = (zmax <= FUSED_ABS_MAX) & (emax <= FUSED_ABS_MAX) & (exponent <= LOG_SCALE_MAX)
    ok &= ls_max <= FUSED_LOG_SIGMA_MAX
    inside = torch.ones((), dtype=torch.bool, device=ls.device)
    if lo is not None:
        inside &= raw_min >= lo
    if hi is not None:
        inside &= raw_max <= hi
    ok, inside = torch.stack([ok, inside]).tolist()
    if not ok:
        return None
    return (None, None) if inside else (lo, hi)


def _reference_soft_assign(
    z: torch.Tensor,
    codebook: torch.Tensor,
    log_sigma: torch.Tensor,
    log_prior: torch.Tensor | None,
    normalization: Normalization,
    rows: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked softmax of :func:`posterior_logits` under plain autograd."""
    n = z.shape[0]
    if rows >= n:
        probs = torch.softmax(posterior_logits(z, codebook, log_sigma, log_prior, normalization), dim=-1)
        return probs, probs @ codebook
    probs_parts, zhat_parts = [], []
    for sl in _chunks(n, rows):
        ls = log_sigma[sl] if log_sigma.dim() == 2 else log_sigma
        p = torch.softmax(posterior_logits(z[sl], codebook, ls, log_prior, normalization), dim=-1)
        probs_parts.append(p)
        zhat_parts.append(p @ codebook)
    return torch.cat(probs_parts), torch.cat(zhat_parts)


def soft_assign(
    z: torch.Tensor,
    codebook: torch.Tensor,
    log_sigma: torch.Tensor,
    log_prior: torch.Tensor | None = None,
    normalization: Normalization = "gaussian",
    chunk_size: int | None = None,
    *,
    log_sigma_bounds: tuple[float | None, float | None] | None = None,
    return_indices: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Posterior ``p(k | z)`` ``(N, K)`` and posterior mean ``z_hat`` ``(N, d)``.

    Args:
        z, codebook, log_sigma, log_prior, normalization: as in :func:`posterior_logits`.
        chunk_size: rows per chunk; bounds the ``(rows, K)`` temporaries. None picks
            :func:`default_chunk_rows`.
            Results agree with the unchunked computation to float rounding, values and
            gradients.
        log_sigma_bounds: ``(lo, hi)``: use ``log_sigma.clamp(lo, hi)`` (with the
            gradient of ``torch.clamp``) without materializing the clamped copy, which
            saves an ``(N, K)`` tensor for a predicted log-sigma.
        return_indices: also return ``probs.argmax(-1)`` ``(N,)`` (computed chunk by
            chunk while the chunk is in cache).

    Returns:
        ``(probs, z_hat)``, or ``(probs, z_hat, indices)`` with ``return_indices``.
        Differentiable w.r.t. ``z``, ``codebook``, ``log_sigma`` and ``log_prior``.
    """
    if z.dim() != 2 or codebook.dim() != 2 or z.shape[1] != codebook.shape[1]:
        raise ValueError(f"soft_assign needs z (N, d) and codebook (K, d), got {tuple(z.shape)} and {tuple(codebook.shape)}")
    lo, hi = log_sigma_bounds if log_sigma_bounds is not None else (None, None)
    rows = default_chunk_rows(codebook.shape[0], z.shape[0]) if chunk_size is None else int(chunk_size)
    if rows < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    plan = _fused_plan(z, codebook, log_sigma, lo, hi)
    if plan is not None:
        coef = _norm_coef(normalization, z.shape[1])
        probs, z_hat, indices = _FusedSoftAssign.apply(z, codebook, log_sigma, log_prior, coef, *plan, rows)
    else:
        probs, z_hat = _reference_soft_assign(z, codebook, _clamp(log_sigma, lo, hi), log_prior, normalization, rows)
        if not return_indices:
            return probs, z_hat
        indices = probs.argmax(dim=-1)
    return (probs, z_hat, indices) if return_indices else (probs, z_hat)


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """``exp(H(mean_n probs_n))`` for ``probs`` of shape ``(N, K)``: effective codes used."""
    mean = probs.detach().float().mean(0)
    entropy = -(mean * torch.log(mean.clamp_min(1e-12))).sum()
    return entropy.exp()
