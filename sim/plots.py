"""Pictures and a page of ``agner simulate`` results (needs matplotlib).

:func:`save_plot` draws the service level (answered within the queue's threshold
/ offered): per interval of the day when the scenario has a profile, else per
queue; with 95% half-widths as error bars when there are replications, and each
queue's target as a dashed line. :func:`save_html_report` writes one
self-contained page: the tables of the text report and the same chart as inline
SVG.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["save_html_report", "save_plot"]


def _figure(report: Mapping[str, Any], targets: Mapping[str, float]) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plots need matplotlib: pip install matplotlib") from None
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    intervals = report.get("intervals") or []
    if intervals:
        hours = [iv["start_s"] / 3600 for iv in intervals]
        for name in report["queues"]:
            ys = [iv["queues"][name]["service_level"] for iv in intervals]
            err = [iv["queues"][name].get("service_level_ci95") or 0 for iv in intervals]
            pts = [(x, y, e) for x, y, e in zip(hours, ys, err, strict=True) if y is not None]
            if not pts:
                continue
            line = ax.errorbar(
                [p[0] for p in pts],
                [p[1] for p in pts],
                yerr=[p[2] for p in pts],
                marker="o",
                ms=3,
                capsize=2,
                label=name,
            )
            if name in targets:
                ax.axhline(targets[name], ls="--", lw=0.8, color=line[0].get_color())
        ax.set_xlabel("hours from the start of the day")
    else:
        names = list(report["queues"])
        ys = [report["queues"][n]["service_level"] or 0 for n in names]
        err = [report["queues"][n].get("service_level_ci95") or 0 for n in names]
        ax.bar(names, ys, yerr=err, capsize=3, color="#4c72b0")
        for i, n in enumerate(names):
            if n in targets:
                ax.hlines(targets[n], i - 0.4, i + 0.4, linestyles="--", colors="black")
    ax.set_ylabel("service level (answered within T / offered)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if intervals:
        ax.legend(loc="lower left", fontsize="small")
    ax.set_title("service level by interval" if intervals else "service level by queue")
    fig.tight_layout()
    return fig


def save_plot(
    report: Mapping[str, Any], path: str | Path, targets: Mapping[str, float] | None = None
) -> None:
    """Write the service-level chart as PNG."""
    fig = _figure(report, targets or {})
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _fmt(v: Any, pct: bool) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.1f}%"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


_COLS = [
    ("offered", "offered", False),
    ("answered", "answered", False),
    ("abandoned", "abandoned", False),
    ("p_wait", "P(wait)", True),
    ("p_abandon", "abandoned", True),
    ("asa_s", "ASA s", False),
    ("mean_wait_s", "mean wait s", False),
    ("service_level", "SL / offered", True),
    ("service_level_answered", "SL / answered", True),
]


def _table(rows: list[tuple[str, Mapping[str, Any]]], first: str) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for _, t, _ in _COLS)
    body = []
    for name, fig in rows:
        cells = []
        for key, _, pct in _COLS:
            text = _fmt(fig.get(key), pct)
            ci = fig.get(f"{key}_ci95")
            if ci is not None:
                text += f" <small>±{_fmt(ci, pct)}</small>"
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>{first}</th>{head}</tr>{''.join(body)}</table>"


def save_html_report(
    report: Mapping[str, Any],
    path: str | Path,
    title: str,
    targets: Mapping[str, float] | None = None,
) -> None:
    """Write a self-contained HTML page of the results."""
    fig = _figure(report, targets or {})
    svg = io.StringIO()
    fig.savefig(svg, format="svg")
    import matplotlib.pyplot as plt

    plt.close(fig)
    r = report["replications"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}",
        "tr th:first-child{text-align:left}small{color:#777}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{report['calls']:,} calls in {r} replication{'s' if r > 1 else ''}, "
        f"seed {report['seed']}; {report['simulated_s'] / 3600:.1f} simulated hours each. "
        + ("± is the 95% confidence half-width over the replications. " if r > 1 else "")
        + "Service level: answered within the queue's threshold, over offered or "
        "over answered contacts.</p>",
        "<h2>Queues</h2>",
        _table([*report["queues"].items(), ("overall", report["overall"])], "queue"),
        "<h2>Occupancy</h2><table><tr><th>agent group</th><th>occupancy</th>"
        "<th>contacts held per agent</th></tr>",
    ]
    for name, g in [*report["agent_groups"].items(), ("overall", report["overall"])]:
        ci = g.get("occupancy_ci95")
        extra = f" <small>±{_fmt(ci, True)}</small>" if ci is not None else ""
        held = g.get("contacts_held")
        ci = g.get("contacts_held_ci95")
        held_text = "-" if held is None else f"{held:.2f}"
        held_text += f" <small>±{ci:.2f}</small>" if ci is not None else ""
        parts.append(
            f"<tr><th>{html.escape(name)}</th><td>{_fmt(g['occupancy'], True)}{extra}</td>"
            f"<td>{held_text}</td></tr>"
        )
    parts.append("</table>")
    parts.append(svg.getvalue()[svg.getvalue().index("<svg") :])
    if report.get("intervals"):
        parts.append("<h2>By interval (all queues)</h2>")
        rows = []
        for iv in report["intervals"]:
            h, m = divmod(int(iv["start_s"]) // 60, 60)
            rows.append((f"{h:02d}:{m:02d}", iv["overall"]))
        parts.append(_table(rows, "start"))
    parts.append("</body></html>")
    try:
        Path(path).write_text("\n".join(parts), encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror}") from None
