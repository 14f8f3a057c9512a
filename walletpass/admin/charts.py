"""Plotly figures for the dashboard, as HTML fragments. Flask-free.

The fragments do not embed plotly.js (4-5 MB); the page loads it once from
``/admin/static/plotly.js``, which the browser then caches. Their words are in the
reader's language: the series' names from the catalogues, the days written by Babel
("Dec 6", "6 Δεκ", "12月6日") as the axis's categories, since plotly's own date axis
names months in English only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import plotly
import plotly.graph_objects as go
from babel.dates import format_skeleton
from babel.numbers import format_percent

from walletpass.analytics import Dashboard
from walletpass.i18n.catalogues import text
from walletpass.i18n.languages import babel_locale

APPLE = "#1d1d1f"
GOOGLE = "#1a73e8"
APPLE_LIGHT = "#a1a1a6"
GOOGLE_LIGHT = "#a8c7fa"
ACCENT = "#2f6f9f"
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
CONFIG = {"displayModeBar": False, "responsive": True}


def plotly_version() -> str:
    return str(plotly.__version__)


def _layout(fig: go.Figure, *, height: int = 300, **extra: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 44, "r": 16, "t": 12, "b": 36},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"family": FONT, "size": 12, "color": "#3c4650"},
        legend={"orientation": "h", "y": 1.12, "x": 0, "font": {"size": 12}},
        hovermode="x unified",
        **extra,
    )
    fig.update_xaxes(showgrid=False, linecolor="#d5dbe1")
    fig.update_yaxes(gridcolor="#eef1f4", zerolinecolor="#c5ccd3", rangemode="tozero")
    return fig


def _html(fig: go.Figure, div_id: str) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config=CONFIG, div_id=div_id))


def _days(days: Sequence[date], lang: str) -> list[str]:
    """Each day as the reader writes a day of a month (unique within a 90-day period)."""
    locale = babel_locale(lang)
    return [format_skeleton("MMMd", d, locale=locale) for d in days]


def _day_axis(fig: go.Figure, days: list[str]) -> None:
    """The days as categories, about seven of them labelled, level (plotly labels every
    category of a category axis, turned on their side)."""
    step = max(1, math.ceil(len(days) / 7))
    fig.update_xaxes(
        type="category", tickmode="array", tickvals=days[::step], ticktext=days[::step], tickangle=0
    )


def installs_chart(data: Dashboard, lang: str = "en") -> str:
    """Installs above the axis, removals below it, per platform and day."""
    t = text(lang)
    days = _days(data.pass_events.days, lang)
    series = data.pass_events.series
    fig = go.Figure()
    platforms = (
        ("apple", APPLE, APPLE_LIGHT, "Apple"),
        ("google", GOOGLE, GOOGLE_LIGHT, "Google"),
    )
    for platform, colour, light, label in platforms:
        fig.add_bar(
            x=days,
            y=series[f"{platform} installed"],
            name=t.gettext("%(platform)s installs", platform=label),
            marker_color=colour,
            hovertemplate="%{y}",
        )
        fig.add_bar(
            x=days,
            y=[-n for n in series[f"{platform} removed"]],
            name=t.gettext("%(platform)s removals", platform=label),
            marker_color=light,
            customdata=series[f"{platform} removed"],
            hovertemplate="%{customdata}",
        )
    fig = _layout(fig, height=320, barmode="relative", bargap=0.25)
    _day_axis(fig, days)
    # Four entries do not fit on one line above a half-width chart; below it they do.
    fig.update_layout(
        legend={"orientation": "h", "y": -0.14, "yanchor": "top", "x": 0},
        margin={"l": 44, "r": 16, "t": 8, "b": 64},
    )
    return _html(fig, "chart-installs")


def scans_chart(data: Dashboard, lang: str = "en") -> str:
    t = text(lang)
    days = _days(data.scans.days, lang)
    fig = go.Figure(
        go.Scatter(
            x=days,
            y=data.scans.series["scans"],
            name=t.gettext("Scans"),
            mode="lines+markers" if len(days) <= 31 else "lines",
            line={"color": ACCENT, "width": 2.5},
            marker={"size": 5},
            fill="tozeroy",
            fillcolor="rgba(47,111,159,0.12)",
            # plotly fills in %{y}; the catalogue's text keeps it where a language puts it.
            hovertemplate=t.gettext("%(count)s scans", count="%{y}"),
        )
    )
    fig = _layout(fig, showlegend=False)
    _day_axis(fig, days)
    return _html(fig, "chart-scans")


def campaigns_chart(data: Dashboard, lang: str = "en") -> str | None:
    if not data.campaigns:
        return None
    results = list(reversed(data.campaigns))
    locale = babel_locale(lang)
    fig = go.Figure(
        go.Bar(
            x=[(c.rate or 0) * 100 for c in results],
            y=[c.name for c in results],
            orientation="h",
            marker_color=ACCENT,
            text=[
                f"{format_percent(c.rate or 0, '#,##0.0%', locale=locale)}  ({c.redeemed}/{c.sent})"
                for c in results
            ],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
        )
    )
    fig = _layout(fig, height=max(200, 60 + 42 * len(results)), showlegend=False)
    fig.update_layout(hovermode="closest", margin={"l": 140, "r": 16, "t": 12, "b": 36})
    fig.update_xaxes(
        ticksuffix="%", tickformat=None, range=[0, 100], showgrid=True, gridcolor="#eef1f4"
    )
    fig.update_yaxes(automargin=True)
    return _html(fig, "chart-campaigns")


def dashboard_charts(data: Dashboard, lang: str = "en") -> dict[str, str | None]:
    return {
        "installs": installs_chart(data, lang),
        "scans": scans_chart(data, lang),
        "campaigns": campaigns_chart(data, lang),
    }
