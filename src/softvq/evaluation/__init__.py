"""Evaluation of trained bottlenecks: clustering, linear probes, code usage, reconstruction."""

from softvq.evaluation.metrics import (
    MetricInputError,
    clustering_accuracy,
    codebook_usage,
    codebook_usage_from_counts,
    kmeans_labels,
    kmeans_metrics,
    linear_probe,
    reconstruction_mse,
)

__all__ = [
    "MetricInputError",
    "clustering_accuracy",
    "codebook_usage",
    "codebook_usage_from_counts",
    "kmeans_labels",
    "kmeans_metrics",
    "linear_probe",
    "reconstruction_mse",
]
