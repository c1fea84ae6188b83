"""Result tables (Markdown/CSV/JSON/terminal) and figures (PNG) for experiment reports."""

from softvq.reporting.plots import (
    embed_2d,
    image_grid,
    save_codebook_usage,
    save_embedding,
    save_embeddings_grid,
    save_reconstructions,
    save_training_curve,
)
from softvq.reporting.tables import (
    LOWER_IS_BETTER,
    format_terminal,
    paired_differences,
    paired_to_markdown,
    summarize,
    to_csv,
    to_markdown,
    write_tables,
)

__all__ = [
    "LOWER_IS_BETTER",
    "embed_2d",
    "format_terminal",
    "image_grid",
    "paired_differences",
    "paired_to_markdown",
    "save_codebook_usage",
    "save_embedding",
    "save_embeddings_grid",
    "save_reconstructions",
    "save_training_curve",
    "summarize",
    "to_csv",
    "to_markdown",
    "write_tables",
]
