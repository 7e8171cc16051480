"""Fig. 6: the layer-1/2 comparison panels and the measures behind them (stage `architecture`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zfnet.experiments.architecture import ArchitectureResult
from zfnet.tiles import to_hwc
from zfnet.viz.figures import plt


def figures(result: ArchitectureResult) -> dict[str, plt.Figure]:
    """The three Fig. 6 figures of `result`, by name: conv1_filters, conv2_projections, measures."""
    labels = list(result.measures)
    return {
        "conv1_filters": side_by_side([result.filters[m] for m in labels], [f"{m} conv1" for m in labels],
                                      "Layer-1 filters (Fig. 6 a-c)"),
        "conv2_projections": side_by_side([result.projections[m] for m in labels], [f"{m} conv2" for m in labels],
                                          "Layer-2 features: strongest activation of random maps, projected "
                                          "(Fig. 6 d-e)", cell=5.0),
        "measures": measures_figure(result.measures, result.samples, "Architecture selection (Fig. 6), measured"),
    }


def side_by_side(images: Sequence[np.ndarray], titles: Sequence[str], title: str, cell: float = 4.0) -> plt.Figure:
    """A few images in one row, each in its own equal panel (Fig. 6 a-e)."""
    fig, axes = plt.subplots(1, len(images), figsize=(cell * len(images), cell + 0.5), squeeze=False)
    for ax, image, name in zip(axes[0], images, titles):
        image = to_hwc(image)
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def measures_figure(measures: dict[str, dict], samples: dict[str, dict], title: str) -> plt.Figure:
    """The Fig. 6 measures per model (stage `architecture`), one panel each, every value per filter or
    per image so the spread shows: conv1 peak-frequency histograms of the live filters; per-filter
    share of power above the stride's Nyquist frequency against white noise; the shift-sensitivity
    curve S(d) against its white-noise-conv1 floor and the alias-free d/step; the dead-filter tests;
    conv1 filter RMS against the init scale and the radius; conv2 projection lattice share on equal
    windows. `measures[label]` is the stage's metrics entry, `samples[label]` its per-filter and
    per-image tensors (rms, dead, peak, above_nyquist, shift, shift_noise, lattice, patch_lattice).
    """
    labels = list(measures)
    colours = {m: f"C{i}" for i, m in enumerate(labels)}
    x = np.arange(len(labels))
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4))
    (peak_ax, nyq_ax, shift_ax), (dead_ax, rms_ax, lattice_ax) = axes

    def strip(ax, position: float, values, colour: str, width: float = 0.28) -> None:
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            ax.text(position, 0.5, "none", ha="center", fontsize=7, transform=ax.get_xaxis_transform())
            return
        ax.scatter(position + rng.uniform(-width / 2, width / 2, len(values)), values, s=7, color=colour,
                   alpha=0.55, linewidths=0)
        ax.boxplot([values], positions=[position], widths=width, showfliers=False,
                   medianprops={"color": "black"}, boxprops={"linewidth": 0.8}, whiskerprops={"linewidth": 0.8})

    # peak frequency histogram (live filters), as a share of each model's live filters
    edges = np.asarray(measures[labels[0]]["frequency_edges"])
    centres, bin_width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)[0]
    bar = bin_width / (len(labels) + 0.5)
    for i, m in enumerate(labels):
        counts = np.asarray(measures[m]["conv1_peak_frequency"]["histogram"], dtype=float)
        shares = counts / max(counts.sum(), 1)
        peak_ax.bar(centres + (i - (len(labels) - 1) / 2) * bar, shares, bar, color=colours[m],
                    label=f"{m} ({int(counts.sum())} live)")
    for stride in sorted({measures[m]["conv1_stride"] for m in labels}):
        peak_ax.axvline(1 / (2 * stride), color="black", linestyle="--", linewidth=0.9)
        peak_ax.text(1 / (2 * stride), 0.99, f" stride {stride}\n Nyquist", transform=peak_ax.get_xaxis_transform(),
                     fontsize=6.5, va="top")
    for edge in (1 / 6, 1 / 3):
        peak_ax.axvline(edge, color="grey", linestyle=":", linewidth=1)
    noise = measures[labels[0]]["white_noise_band_shares"]
    peak_ax.set(title="conv1 peak frequency of the live filters\n(dotted: low | mid | high thirds of Nyquist)",
                xlabel="cycles per input pixel (DC excluded)", ylabel="share of live filters")
    peak_ax.text(0.98, 0.97, "white noise low/mid/high:\n" + "/".join(f"{noise[b]:.2f}" for b in ("low", "mid", "high")),
                 transform=peak_ax.transAxes, ha="right", va="top", fontsize=7)
    peak_ax.legend(fontsize=7, loc="center right")

    # above-Nyquist share per live filter, against white noise
    for i, m in enumerate(labels):
        strip(nyq_ax, i, samples[m]["above_nyquist"], colours[m])
        floor = measures[m]["conv1_above_nyquist"]["white_noise"]
        nyq_ax.hlines(floor, i - 0.4, i + 0.4, colors="red", linestyles="--", linewidth=1.2)
    nyq_ax.set(title="conv1 power above the stride's Nyquist, per live filter\n(red dashed: white noise, "
                     "1 - 1/stride^2)", ylabel="share of filter power", ylim=(0, 1.02))
    nyq_ax.set_xticks(x, [f"{m}\nstride {measures[m]['conv1_stride']}" for m in labels], fontsize=8)

    # shift sensitivity S(d): median and quartiles over images
    offsets = np.linspace(-0.12, 0.12, len(labels)) if len(labels) > 1 else [0.0]
    step = None
    for i, m in enumerate(labels):
        shift = measures[m]["shift"]
        d = np.asarray(shift["shifts"], dtype=float)
        step = shift["step"]
        for key, style, name in (("model", "-", m), ("noise_conv1", "--", f"{m}, white-noise conv1")):
            med = np.array([_or_nan(shift[key][str(int(s))]["median"]) for s in d])
            lo = np.array([_or_nan(shift[key][str(int(s))]["q25"]) for s in d])
            hi = np.array([_or_nan(shift[key][str(int(s))]["q75"]) for s in d])
            shift_ax.errorbar(d + offsets[i], med, yerr=[med - lo, hi - med], color=colours[m], linestyle=style,
                              marker="o" if key == "model" else "x", markersize=4, capsize=2, linewidth=1.2,
                              label=name)
    if step:
        d = np.asarray(measures[labels[0]]["shift"]["shifts"], dtype=float)
        shift_ax.plot(d, d / step, color="grey", linestyle=":", label="alias-free guide d/step")
    shift_ax.set(title=f"{measures[labels[0]]['shift']['layer']} change under a d-px input shift, relative to\n"
                       f"a whole-step ({step} px) shift: median, quartiles over images",
                 xlabel="input shift d (px)", ylabel="S(d)")
    shift_ax.set_ylim(bottom=0)
    shift_ax.set_xticks(measures[labels[0]]["shift"]["shifts"])
    shift_ax.legend(fontsize=6.5)

    # dead-filter tests
    tests = (("near_init_share", "RMS near init", "tab:olive"), ("white_spectrum_share", "white spectrum", "tab:purple"),
             ("low_correlation_share", "low neighbour corr.", "tab:brown"), ("share", "dead (all three)", "tab:red"))
    width = 0.8 / len(tests)
    for j, (key, name, colour) in enumerate(tests):
        values = [measures[m]["conv1_dead"][key] for m in labels]
        dead_ax.bar(x + (j - (len(tests) - 1) / 2) * width, values, width, label=name, color=colour)
    dead_ax.set(title="conv1 dead-filter tests: share of filters passing", ylabel="share of filters", ylim=(0, 1.05))
    dead_ax.set_xticks(x, labels, fontsize=8)
    dead_ax.legend(fontsize=7)

    # filter RMS against the init scale, the dead threshold and the radius
    for i, m in enumerate(labels):
        rms, dead = np.asarray(samples[m]["rms"], dtype=float), np.asarray(samples[m]["dead"], dtype=bool)
        rms = np.maximum(rms, 0.3 * measures[m]["conv1_dead"]["init_rms"])  # zero filters at the bottom
        jitter = rng.uniform(-0.14, 0.14, len(rms))
        rms_ax.scatter(i + jitter[~dead], rms[~dead], s=8, color=colours[m], alpha=0.6, linewidths=0)
        rms_ax.scatter(i + jitter[dead], rms[dead], s=10, color="black", marker="x", linewidths=0.8)
        info = measures[m]["conv1_dead"]
        for value, style in ((info["init_rms"], ":"), (info["thresholds"]["rms"], "--"), (info["radius"], "-")):
            rms_ax.hlines(value, i - 0.4, i + 0.4, colors="grey", linestyles=style, linewidth=1)
    rms_ax.set_yscale("log")
    rms_ax.set(title="conv1 filter RMS (x: dead; zeros at the bottom)\n"
                     "init (dotted), near-init limit (dashed), radius (solid)",
               ylabel="RMS")
    rms_ax.set_xticks(x, labels, fontsize=8)

    # lattice share of conv2 projections and patches, equal windows
    for i, m in enumerate(labels):
        strip(lattice_ax, i - 0.18, samples[m]["lattice"], colours[m], width=0.3)
        strip(lattice_ax, i + 0.18, samples[m]["patch_lattice"], "grey", width=0.3)
    info = measures[labels[0]]["conv2_lattice"]
    lattice_ax.axhline(info["white_noise"], color="red", linestyle="--", linewidth=1)
    lattice_ax.set(title=f"conv2 lattice energy (period {info['period']}), equal {info['window']}-px windows\n"
                         "projections (colour), image patches (grey), white noise (red)",
                   ylabel="share of energy")
    lattice_ax.set_xticks(x, labels, fontsize=8)
    for ax in axes.flat:
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _or_nan(value) -> float:
    """A metrics value that may be None (no data) as a float, NaN for None."""
    return float("nan") if value is None else float(value)

