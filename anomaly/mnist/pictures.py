"""Digit pictures: image rows, image grids, the 2-D latent scatter.

Each function takes arrays and returns a matplotlib Figure (built without pyplot, so no
display is needed); nothing calls ``pyplot.show``. Save them with
:func:`anomaly.report.plots.save_figure`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def plot_image_rows(rows: Sequence[np.ndarray], titles: Sequence[str], *, suptitle: str = ""):
    """Images side by side in rows, one titled row per array (same count in each).

    Used for originals over reconstructions, and noisy / denoised / clean.
    """
    if len(rows) != len(titles) or not rows:
        raise ValueError(f"expected one title per row, got {len(rows)} rows and {len(titles)} titles")
    n_columns = len(rows[0])
    figure = _figure((max(6.0, 1.0 * n_columns), 1.2 * len(rows) + 0.6))
    axes = figure.subplots(len(rows), n_columns, squeeze=False)
    for row, (images, title) in enumerate(zip(rows, titles)):
        for column in range(n_columns):
            ax = axes[row, column]
            ax.imshow(images[column], cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(title, rotation=0, ha="right", va="center")
    if suptitle:
        figure.suptitle(suptitle)
    return figure


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, *, title: str = ""):
    """First row the original digits, second row their reconstructions."""
    return plot_image_rows([originals, reconstructions], ["original", "reconstruction"],
                           suptitle=title)


def plot_denoising(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, *, title: str = ""):
    """Rows: noisy inputs, the model's outputs, the clean digits."""
    return plot_image_rows([noisy, denoised, clean], ["noisy", "denoised", "clean"],
                           suptitle=title)


def plot_image_grid(images: np.ndarray, n_columns: int, *, title: str = "",
                    x_values: Sequence[float] | None = None,
                    y_values: Sequence[float] | None = None):
    """Images tiled row by row into one picture.

    With ``x_values`` and ``y_values`` (one per column and per row), the axes are
    labelled with them: the decoded manifold of a 2-D latent space.
    """
    images = np.asarray(images)
    height, width = images.shape[1:3]
    n_rows = int(np.ceil(len(images) / n_columns))
    canvas = np.zeros((n_rows * height, n_columns * width))
    for index, image in enumerate(images):
        row, column = divmod(index, n_columns)
        canvas[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    figure = _figure((max(4.0, 0.45 * n_columns + 1.5), max(4.0, 0.45 * n_rows + 1.0)))
    ax = figure.add_subplot()
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0)
    if x_values is not None and y_values is not None:
        ax.set_xticks(np.arange(n_columns) * width + width / 2, [f"{v:.1f}" for v in x_values])
        ax.set_yticks(np.arange(n_rows) * height + height / 2, [f"{v:.1f}" for v in y_values])
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title)
    return figure


def plot_latent_scatter(codes: np.ndarray, labels: np.ndarray, *, title: str = "", ax=None):
    """2-D codes as points coloured by digit, with a colour bar."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"expected 2-D codes of shape (n, 2), got {codes.shape}")
    if ax is None:
        figure = _figure((7, 6))
        ax = figure.add_subplot()
    figure = ax.figure
    points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5,
                        s=4, alpha=0.8)
    colour_bar = figure.colorbar(points, ax=ax, ticks=range(10))
    colour_bar.set_label("digit")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(title)
    return figure
