"""Argument validation shared by the quantizers (errors name the argument)."""

from __future__ import annotations

import math

import torch


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def check_nonnegative_float(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value  # type: ignore[return-value]


def check_latents(z: object, code_dim: int, name: str = "z", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Check that ``z`` is a floating tensor of shape ``(..., code_dim)`` (and of the codebook's
    ``dtype`` when given, unless autocast is on, which casts the matrix products itself)."""
    if not isinstance(z, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {z.dtype}")
    if dtype is not None and z.dtype != dtype and not torch.is_autocast_enabled(z.device.type):
        raise ValueError(f"{name} has dtype {z.dtype} but the codebook is {dtype}; "
                         f"convert one of them (z.to({dtype}) or quantizer.to({z.dtype}))")
    if z.dim() < 1 or z.shape[-1] != code_dim:
        raise ValueError(
            f"{name} must have shape (..., code_dim={code_dim}) with channels last, "
            f"got shape {tuple(z.shape)}"
        )
    if z.numel() == 0:  # the mean losses and the perplexity of no vectors would be NaN
        raise ValueError(f"{name} holds no vectors (shape {tuple(z.shape)}); skip the call for an empty batch")
    return z
