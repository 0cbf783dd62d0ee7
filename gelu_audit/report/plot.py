"""Pictures of where implementations fail: ULP error against x, and the ULP histograms.

Drawn from an accuracy report's JSON document (a live audit is turned into one first), using
only what the report keeps: each case's per-segment error profile, accurate domain, worst
inputs and histogram. So a plot of a CI run needs no re-run, and a plot of an exhaustive fp32
audit needs none of its 2^32 points. matplotlib is an optional extra (``gelu-audit[plot]``).
"""

from __future__ import annotations

import math
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gelu_audit.errors import EnvironmentUnavailableError, UsageError
from gelu_audit.numerics.formats import FORMATS
from gelu_audit.report.envelope import expand_profiles
from gelu_audit.report.text import accuracy_rank_key
from gelu_audit.report.visible import visible

PLOT_SUFFIXES = (".png", ".svg")
ERROR_FLOOR = 1e-3
"""Errors below this (an exact or nearly exact answer) are drawn at it: a log axis has no 0."""
CORE = (-8.0, 8.0)
"""The linear close-up of the core, where GELU bends and the tail starts."""
DOMAIN_STRIP = 0.12
"""Share of the error axes' height, at the bottom, for the accurate-domain bands."""

ERROR_CEILING = 1e30
"""Errors drawn at most this high: an answer off by more (an fp64 answer off by 10^300, an
infinite error written as "inf") is drawn at the top of the axis instead of overflowing it."""


def drawn_error(value: Any) -> float:
    """An error in ULPs as drawn on the log axis: between the floor and the ceiling, an infinite
    one at the ceiling (the report writes it as the string "inf")."""
    number = float(value)
    if math.isnan(number):
        return ERROR_FLOOR
    return min(max(number, ERROR_FLOOR), ERROR_CEILING)


def check_plot_path(path: str) -> Path:
    """The output path, refused (exit 2) unless it ends in .png or .svg and its folder exists
    (as ``-o`` refuses a missing folder: a typo in a path should not make folders)."""
    target = Path(path)
    if target.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"cannot plot to {path!r}: the file name must end in .png or .svg")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot plot to {path!r}: {str(folder)!r} is not a folder")
    return target


def require_matplotlib() -> None:
    """Exit 2 with the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EnvironmentUnavailableError(
            "plotting needs matplotlib: pip install 'gelu-audit[plot]'"
        ) from None


def _pyplot() -> Any:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _check_profile(profile: dict[str, Any]) -> None:
    """A profile's columns are one value per segment each: columns of other lengths, or values
    that are not numbers, would draw a wrong picture without a word (ValueError says which)."""
    columns = ("x_lo", "x_hi", "points", "max_ulp")
    lengths = {name: len(profile[name]) for name in columns}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"error profile columns of different lengths {lengths}")
    for name in columns:
        for value in profile[name]:
            float(value)


def plot_groups(
    document: dict[str, Any],
    dtypes: Sequence[str],
    implementations: Sequence[str],
    devices: Sequence[str],
    against: str,
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The report's cases to draw, one group (one picture) per dtype, device and pass."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    stats_key = "exact" if against == "exact" else "own_formula"
    for case in document.get("results", []):
        if case.get("status") != "ok" or not case.get(stats_key) or "profile" not in case[stats_key]:
            continue
        if (dtypes and case["dtype"] not in dtypes) or (
            implementations and case["implementation"] not in implementations
        ):
            continue
        if devices and case["device"] not in devices:
            continue
        _check_profile(case[stats_key]["profile"])
        groups.setdefault((case["dtype"], case["device"], case.get("pass", "forward")), []).append(case)
    if not groups:
        raise UsageError(
            "nothing to plot: the report has no finished case with an error profile"
            + (" matching the selection" if dtypes or implementations or devices else "")
        )
    return groups


def output_paths(target: Path, groups: list[tuple[str, str, str]]) -> list[Path]:
    """One file per picture: ``target`` itself for one, ``name-<dtype>[-<device>][-backward].png``
    for more."""
    if len(groups) == 1:
        return [target]
    several_devices = len({device for _, device, _ in groups}) > 1
    paths = []
    for dtype, device, pass_ in groups:
        where = "-" + device.replace(":", "") if several_devices else ""
        backward = "-backward" if pass_ == "backward" else ""
        paths.append(target.with_name(f"{target.stem}-{dtype}{where}{backward}{target.suffix}"))
    return paths


HEATMAP_FROM = 6
"""From this many implementations in one picture, ``auto`` draws a heatmap: overlaid lines and
bars stop being tellable apart."""

STYLES = ("auto", "lines", "heatmap")


def write_plots(
    document: dict[str, Any],
    target: Path,
    dtypes: Sequence[str] = (),
    implementations: Sequence[str] = (),
    devices: Sequence[str] = (),
    against: str = "exact",
    style: str = "auto",
) -> list[Path]:
    """Draw every selected dtype/device of an accuracy report; the files written. ``style``:
    ``lines`` (error against x, overlaid, and histograms), ``heatmap`` (one row per
    implementation), or ``auto``: a heatmap from :data:`HEATMAP_FROM` implementations on."""
    with warnings.catch_warnings():  # matplotlib's warnings about odd data are not lines of ours:
        warnings.simplefilter("ignore")  # what cannot be drawn is said once, as the run's error
        return _write_plots(document, target, dtypes, implementations, devices, against, style)


def _write_plots(
    document: dict[str, Any],
    target: Path,
    dtypes: Sequence[str],
    implementations: Sequence[str],
    devices: Sequence[str],
    against: str,
    style: str,
) -> list[Path]:
    plt = _pyplot()
    expand_profiles(document)  # a document built in this run is written compact (version 3)
    document = with_own_statistics(document)
    groups = plot_groups(document, list(dtypes), list(implementations), list(devices), against)
    paths = output_paths(target, list(groups))
    for ((dtype, device, pass_), cases), path in zip(groups.items(), paths):
        heatmap = style == "heatmap" or (style == "auto" and len(cases) >= HEATMAP_FROM)
        painter = draw_heatmap if heatmap else draw
        figure = painter(plt, document, dtype, device, cases, against, pass_ == "backward")
        written = path.resolve() if path.is_symlink() else path  # a link stays a link, as with -o
        partial = written.with_name(f".{written.name}.partial")
        try:
            figure.savefig(partial, format=path.suffix.lower().lstrip("."), dpi=100)
            if written.is_file():  # a plot replaced keeps its permissions, as a report does with -o
                partial.chmod(stat.S_IMODE(written.stat().st_mode))
            partial.replace(written)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise EnvironmentUnavailableError(f"cannot write {path}: {error.strerror or error}") from None
        finally:
            plt.close(figure)
    return paths


def with_own_statistics(document: dict[str, Any]) -> dict[str, Any]:
    """The document with ``own_formula: "exact"`` (written for implementations that claim the
    exact function) replaced by the exact statistics it stands for."""
    results = [
        {**case, "own_formula": case.get("exact")} if case.get("own_formula") == "exact" else case
        for case in document.get("results", [])
    ]
    return {**document, "results": results}


def literal(text: str) -> str:
    """Text drawn as written: matplotlib reads ``$…$`` as mathematics (and an unbalanced one as
    an error), and names and versions come from the report, which anyone can have written. Its
    control characters are drawn as their escapes (report.visible): a lone surrogate made
    matplotlib raise, an ESC printed a missing-glyph warning to stderr."""
    return visible(text).replace("$", r"\$")


def _title(document: dict[str, Any], dtype: str, device: str, against: str, backward: bool = False) -> str:
    env = document.get("environment", {})
    libraries = env.get("libraries", {})
    versions = ", ".join(
        f"{name} {libraries[name]}"
        for name in ("torch", "numpy", "jax", "onnxruntime")
        if libraries.get(name)
    )
    inputs = document.get("inputs", {}).get(dtype, {})
    how = inputs.get("method", "")
    points = inputs.get("count") or inputs.get("points")
    function = "GELU′" if backward else "GELU"
    what = f"the exact {function}" if against == "exact" else "each implementation's own formula"
    gradient = " (the backward kernels, grad_output = 1)" if backward else ""
    first = f"{function} error in ULP against {what}: {dtype} on {device}{gradient}"
    count = f", {points:,} inputs" if isinstance(points, int) else ""
    second = f"{how}{count}; gelu-audit {document.get('tool', {}).get('version', '?')}"
    third = f"{versions}; {env.get('cpu', '')}"
    return "\n".join([first, second, third])


def _stairs_runs(profile: dict[str, Any]) -> list[tuple[list[float], list[float]]]:
    """The profile as runs of adjacent segments: (edges, values) for ``Axes.stairs``."""
    runs: list[tuple[list[float], list[float]]] = []
    for lo, hi, value in zip(profile["x_lo"], profile["x_hi"], profile["max_ulp"]):
        lo, hi, value = float(lo), float(hi), drawn_error(value)
        if runs and runs[-1][0][-1] == lo:
            runs[-1][0].append(hi)
            runs[-1][1].append(value)
        else:
            runs.append(([lo, hi], [value]))
    return runs


def draw(
    plt: Any,
    document: dict[str, Any],
    dtype: str,
    device: str,
    cases: list[dict[str, Any]],
    against: str,
    backward: bool = False,
) -> Any:
    """One figure: error against x (whole range and core close-up) and the histograms."""
    from matplotlib.transforms import blended_transform_factory

    fmt = FORMATS[dtype]
    key = "exact" if against == "exact" else "own_formula"
    tolerance = float(document.get("settings", {}).get("domain_tolerance_ulp", 2.0))
    figure = plt.figure(figsize=(14, 9.5))
    grid = figure.add_gridspec(
        2, 3, height_ratios=[3, 2], left=0.06, right=0.985, top=0.89, bottom=0.05, hspace=0.28, wspace=0.22
    )
    full, core, bars = (
        figure.add_subplot(grid[0, :2]),
        figure.add_subplot(grid[0, 2]),
        figure.add_subplot(grid[1, :]),
    )
    colors = _palette(plt, len(cases))
    worst_overall = None
    for number, case in enumerate(cases):
        color = colors[number % len(colors)]
        stats = case[key]
        for axes in (full, core):
            for run, (edges, values) in enumerate(_stairs_runs(stats["profile"])):
                label = literal(case["implementation"]) if axes is full and run == 0 else None
                axes.stairs(values, edges, color=color, linewidth=1.4, label=label)
        for lo, hi, count in zip(
            stats["profile"]["x_lo"], stats["profile"]["x_hi"], stats["profile"]["nonfinite"]
        ):
            if count:
                for axes in (full, core):
                    axes.plot(
                        [(float(lo) + float(hi)) / 2],
                        [1],
                        transform=blended_transform_factory(axes.transData, axes.transAxes),
                        marker="v",
                        color=color,
                        clip_on=False,
                        markersize=7,
                    )
        if stats.get("worst"):
            point = stats["worst"][0]
            x, err = float(point["x"]), float(point["ulp_error"] or 0.0)
            for axes in (full, core):
                axes.plot([x], [drawn_error(err)], marker="o", color=color, markersize=5)
            if worst_overall is None or err > worst_overall[2]:
                worst_overall = (case["implementation"], x, err)
        # the accurate domain: one thin band per implementation along the bottom
        domain = stats["accurate_domain"]
        if domain.get("lo") is not None:
            band = blended_transform_factory(full.transData, full.transAxes)
            step = DOMAIN_STRIP / len(cases)
            full.fill_between(
                [float(domain["lo"]), float(domain["hi"])],
                number * step,
                number * step + step / 2,
                transform=band,
                color=color,
                alpha=0.7,
                linewidth=0,
            )
    top = max(drawn_error(v) for c in cases for v in c[key]["profile"]["max_ulp"] or [1.0])
    top = max(top, tolerance * 10) * 3
    decades = math.log10(top) - math.log10(ERROR_FLOOR)
    bottom = ERROR_FLOOR / 10 ** (decades * DOMAIN_STRIP / (1 - DOMAIN_STRIP) * 1.2)  # room for the bands
    for axes in (full, core):
        axes.set_yscale("log")
        axes.set_ylim(bottom, top)
        axes.axhline(tolerance, color="black", linestyle="--", linewidth=1)
        axes.grid(True, which="major", alpha=0.3)
    full.set_xscale("symlog", linthresh=fmt.smallest_normal, linscale=0.5)
    _decade_ticks(full, fmt)
    full.set_xlabel("x (symmetric log: every binade the same width; bands at the bottom: accurate domains)")
    full.set_ylabel(f"max ULP error per segment (floor {ERROR_FLOOR:g})")
    core.set_xlim(*CORE)
    core.set_xlabel("x, core close-up")
    full.text(
        0.005,
        tolerance,
        f" tolerance {tolerance:g} ULP",
        transform=blended_transform_factory(full.transAxes, full.transData),
        va="bottom",
        fontsize=8,
    )
    if worst_overall:
        name, x, err = worst_overall
        full.annotate(
            f"worst: {literal(name)}\n{err:,.4g} ULP at x = {x:.6g}",
            (x, drawn_error(err)),
            xytext=(0.02, 0.9),
            textcoords="axes fraction",
            fontsize=9,
            arrowprops={"arrowstyle": "->", "color": "0.3"},
        )
    _histograms(bars, cases, key, colors)
    bars.legend(fontsize=8, ncol=min(len(cases), 6), loc="upper center")
    figure.suptitle(literal(_title(document, dtype, device, against, backward)), fontsize=11)
    return figure


def _accuracy_order(case: dict[str, Any], key: str) -> tuple[Any, ...]:
    """The verdict line's ranking (:func:`~gelu_audit.report.text.accuracy_rank_key`), read from
    a saved case, against ``key`` (``exact`` or ``own_formula``); then the name."""
    stats = case[key]
    estimates = stats.get("estimates")
    finite = int(stats["finite_points"])

    def estimated(name: str, counted: float) -> float:
        return float(estimates[name]["value"]) if estimates else counted

    over = sum(stats["profile"].get("over_tolerance", ())) / finite if finite else 0.0
    return (
        *accuracy_rank_key(
            finite=finite,
            nonfinite=int(case.get("nonfinite_count", 0)),
            over_share=estimated("over_tolerance", over),
            max_outside_flush=float(stats.get("max_ulp_outside_flush", stats["max_ulp"])),
            max_ulp=float(stats["max_ulp"]),
            correctly_rounded=estimated("correctly_rounded", float(stats["correctly_rounded"])),
            mean_ulp=estimated("mean_ulp", float(stats["mean_ulp"])),
        ),
        case["implementation"],
    )


def draw_heatmap(
    plt: Any,
    document: dict[str, Any],
    dtype: str,
    device: str,
    cases: list[dict[str, Any]],
    against: str,
    backward: bool = False,
) -> Any:
    """One row per implementation, most accurate first; one column per segment of x (the
    profile's, every binade the same width); colour: the segment's max ULP on a log scale. Black
    bars under a row: where it flushes to ±0; white ticks: its accurate domain's ends; ▼ marks
    segments with non-finite answers."""
    from matplotlib.colors import LogNorm

    key = "exact" if against == "exact" else "own_formula"
    tolerance = float(document.get("settings", {}).get("domain_tolerance_ulp", 2.0))
    ordered = sorted(cases, key=lambda case: _accuracy_order(case, key))
    x_lo = [float(v) for v in ordered[0][key]["profile"]["x_lo"]]
    x_hi = [float(v) for v in ordered[0][key]["profile"]["x_hi"]]
    grid = [[drawn_error(v) for v in c[key]["profile"]["max_ulp"]] for c in ordered]
    points = ordered[0][key]["profile"]["points"]
    masked = [[value if count else math.nan for value, count in zip(row, points)] for row in grid]
    top = max(max(max(row) for row in grid), tolerance * 10)

    rows = len(ordered)
    figure, axes = plt.subplots(figsize=(14, 2.2 + 0.42 * rows))
    figure.subplots_adjust(
        left=0.2, right=0.93, top=1 - 1.15 / (2.2 + 0.42 * rows), bottom=0.9 / (2.2 + 0.42 * rows)
    )
    image = axes.imshow(
        masked,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        norm=LogNorm(vmin=ERROR_FLOOR, vmax=top),
        extent=(0, len(x_lo), rows - 0.5, -0.5),
    )
    colorbar = figure.colorbar(image, ax=axes, pad=0.01, fraction=0.03)
    colorbar.set_label("max ULP error in the segment")
    colorbar.ax.axhline(tolerance, color="white", linewidth=1.5)

    def column(x: float) -> float:
        """Where x falls on the segment axis (interpolated within its segment)."""
        for i, (lo, hi) in enumerate(zip(x_lo, x_hi)):
            if lo <= x <= hi:
                return i + (0.5 if hi == lo else (x - lo) / (hi - lo))
        return 0.0 if x < x_lo[0] else float(len(x_lo))

    for row, case in enumerate(ordered):
        stats = case[key]
        flush = stats.get("flush_to_zero") or {}
        for side in ("negative", "positive"):
            span = flush.get(side)
            if span:
                start, end = column(float(span[0])), column(float(span[1]))
                axes.plot(
                    [start, max(end, start + 0.5)], [row + 0.42, row + 0.42], color="black", linewidth=3
                )
        domain = stats["accurate_domain"]
        if domain.get("lo") is not None:
            for end in (domain["lo"], domain["hi"]):
                axes.plot([column(float(end))], [row], marker="|", color="white", markersize=14, mew=2)
        for i, count in enumerate(stats["profile"]["nonfinite"]):
            if count:
                axes.plot([i + 0.5], [row - 0.3], marker="v", color="red", markersize=5)
    labels = []
    for case in ordered:
        stats = case[key]
        outside = stats.get("max_ulp_outside_flush")
        shown = f"{float(outside):,.4g}" if outside is not None and stats["flush_to_zero"]["count"] else None
        figure_text = f"{float(stats['max_ulp']):,.4g}" + (f" ({shown} w/o flush)" if shown else "")
        labels.append(f"{literal(case['implementation'])}\n{figure_text} ULP")
    axes.set_yticks(range(rows), labels, fontsize=8)
    ticks = [i for i, (lo, hi) in enumerate(zip(x_lo, x_hi)) if lo <= 0 <= hi or _round_power(lo)]
    ticks = _thin(ticks, 14)
    axes.set_xticks([i + 0.5 for i in ticks], [f"{x_lo[i]:.3g}" for i in ticks], fontsize=8, rotation=45)
    axes.set_xlabel(
        "x: one column per segment of the error profile, every binade the same width "
        "(black bars: flushed to ±0; white ticks: accurate domain; red ▼: non-finite)"
    )
    figure.suptitle(literal(_title(document, dtype, device, against, backward)), fontsize=10)
    return figure


def _round_power(value: float) -> bool:
    """Whether |value| is a power of two ≥ 1 or ≤ 1 that makes a readable tick (2^k, k even)."""
    if value == 0 or not math.isfinite(value):
        return False
    exponent = math.log2(abs(value))
    return exponent == int(exponent) and int(exponent) % 4 == 0


def _thin(ticks: list[int], most: int) -> list[int]:
    """At most ``most`` ticks, evenly spread, the first and last kept."""
    if len(ticks) <= most:
        return ticks
    step = math.ceil(len(ticks) / most)
    return ticks[::step]


def _decade_ticks(axes: Any, fmt: Any) -> None:
    """About six powers of ten per side on the symmetric-log axis, and 0."""
    low = math.ceil(math.log10(fmt.smallest_normal))
    high = math.floor(math.log10(fmt.largest_finite))
    step = max(1, math.ceil((high - low) / 6))
    exponents = list(range(high, low - 1, -step))[::-1]
    ticks = [-(10.0**k) for k in reversed(exponents)] + [0.0] + [10.0**k for k in exponents]
    labels = [f"$-10^{{{k}}}$" for k in reversed(exponents)] + ["0"] + [f"$10^{{{k}}}$" for k in exponents]
    axes.set_xticks(ticks, labels, fontsize=8)
    axes.minorticks_off()


def _palette(plt: Any, count: int) -> list[Any]:
    """Distinct colours: tab10 for up to 10 cases; tab20's dark shades before its light ones."""
    if count <= 10:
        return list(plt.get_cmap("tab10").colors)
    shades = plt.get_cmap("tab20").colors
    return list(shades[0::2]) + list(shades[1::2])


def _histograms(axes: Any, cases: list[dict[str, Any]], key: str, colors: Any) -> None:
    labels = [label for label, _ in cases[0][key]["histogram"]]
    width = 0.8 / len(cases)
    for number, case in enumerate(cases):
        counts = [count for _, count in case[key]["histogram"]]
        positions = [i - 0.4 + width * (number + 0.5) for i in range(len(labels))]
        axes.bar(
            positions,
            [c if c else math.nan for c in counts],
            width=width,
            color=colors[number % len(colors)],
            label=literal(case["implementation"]),
        )
    axes.set_yscale("log")
    most = max(max(count for _, count in case[key]["histogram"]) for case in cases)
    axes.set_ylim(0.5, max(most, 1) * 10 ** (1 + len(cases) / 6))  # headroom for the legend
    axes.set_xticks(
        range(len(labels)), [f"{label} ULP" if label != "0" else "exact" for label in labels], fontsize=8
    )
    axes.set_ylabel("inputs")
    axes.set_title("ULP error histogram per implementation", fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
