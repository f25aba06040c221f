"""The drill's chart: the drill's needs by status over time, as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

BANDS = [
    ("waiting", ("queued", "matching"), "#bdbdbd"),
    ("offered", ("offered",), "#fdd835"),
    ("escalated", ("escalated",), "#e53935"),
    ("assigned", ("assigned",), "#90caf9"),
    ("en route / on site", ("en_route", "on_site"), "#1e88e5"),
    ("done / closed", ("done", "closed"), "#43a047"),
    ("deferred / cancelled", ("deferred", "cancelled"), "#8d6e63"),
]
"""Stacked from the bottom: what still waits for help first, what is over last."""


def render(samples: list[tuple[float, dict[str, int]]], path: Path, *, speed: float, title: str) -> Path:
    """Draw the needs by status at each sample (x in scenario minutes) and write the PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t * speed / 60 for t, _ in samples]
    series = [[sum(counts.get(s, 0) for s in statuses) for _, counts in samples] for _, statuses, _ in BANDS]
    figure, axes = plt.subplots(figsize=(10, 5), dpi=100)
    try:
        if samples:
            axes.stackplot(minutes, series, labels=[b[0] for b in BANDS], colors=[b[2] for b in BANDS], alpha=0.9)
        axes.set_xlabel(f"scenario minutes (played at speed {speed:g})")
        axes.set_ylabel("needs")
        axes.set_title(title)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
    return path
