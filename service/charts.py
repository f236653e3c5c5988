"""Small inline SVG charts drawn on the server: the reviewers' spread of one score."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from reviewer.review.form import SCORE_FIELDS, ReviewReport

WIDTH, HEIGHT, LEFT, RIGHT, AXIS_Y = 240, 34, 10.0, 230.0, 14.0
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
RANGES: dict[str, tuple[int, int]] = {
    **{name: (1, 4) for name in SCORE_FIELDS},
    "Overall": (1, 10),
    "Confidence": (1, 5),
}


def _x(value: float, low: int, high: int) -> float:
    return round(LEFT + (value - low) / (high - low) * (RIGHT - LEFT), 1)


def spread_svg(field: str, values: list[tuple[int, int]], mean: float | None) -> Markup:
    """One field's axis with a dot per reviewer (``(reviewer index, score)``) and the mean."""
    low, high = RANGES.get(field, (1, 10))
    parts = [
        f'<svg class="spread" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(field)} scores by reviewer">',
        f'<line x1="{LEFT}" y1="{AXIS_Y}" x2="{RIGHT}" y2="{AXIS_Y}" stroke="#999"/>',
    ]
    for tick in range(low, high + 1):
        x = _x(tick, low, high)
        parts.append(f'<line x1="{x}" y1="{AXIS_Y - 3}" x2="{x}" y2="{AXIS_Y + 3}" stroke="#999"/>')
        parts.append(
            f'<text x="{x}" y="{AXIS_Y + 15}" font-size="9" text-anchor="middle">{tick}</text>'
        )
    if values:
        scores = [v for _, v in values]
        x1, x2 = _x(min(scores), low, high), _x(max(scores), low, high)
        parts.append(
            f'<line x1="{x1}" y1="{AXIS_Y}" x2="{x2}" y2="{AXIS_Y}" stroke="#555" stroke-width="4"'
            ' stroke-opacity="0.35"/>'
        )
    for offset, (index, value) in enumerate(values):
        color = COLORS[index % len(COLORS)]
        y = AXIS_Y - 6 - 3 * (offset % 2)
        parts.append(
            f'<circle cx="{_x(value, low, high)}" cy="{y}" r="4" fill="{color}">'
            f"<title>reviewer {index + 1}: {value}</title></circle>"
        )
    if mean is not None:
        x = _x(mean, low, high)
        parts.append(
            f'<path d="M{x - 4},{AXIS_Y + 6} L{x + 4},{AXIS_Y + 6} L{x},{AXIS_Y + 1} Z" '
            f'fill="#000"><title>mean {mean:.2f}</title></path>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def score_rows(report: ReviewReport) -> list[dict[str, object]]:
    """The score table: per field, mean, spread, min–max, values and the chart."""
    rows: list[dict[str, object]] = []
    for name in SCORE_FIELDS:
        stats = report.scores.get(name)
        values = [(r.index, int(getattr(r.final, name))) for r in report.reviewers]
        rows.append(
            {
                "field": name,
                "mean": f"{stats.mean:.2f}" if stats else "–",
                "std": f"{stats.std:.2f}" if stats else "–",
                "span": f"{stats.min}–{stats.max}" if stats else "–",
                "values": ", ".join(str(v) for _, v in values),
                "chart": spread_svg(name, values, stats.mean if stats else None),
            }
        )
    return rows
