"""Transfer figures (`zfnet.experiments.transfer`): accuracy against training images per class (Fig. 9, Tables 4-5), accuracy against
layer (Table 7), and per-class average precision (Table 6). Ours on the left, the paper's on the right:
the datasets differ (the built-in data has a dozen classes, not 101 or 256), so they share no axis.

Results are given as fractions in [0, 1]; the paper's numbers (`zfnet.paper`) are percent.
"""

from __future__ import annotations

from zfnet.experiments.transfer import TransferResult
from zfnet.paper import numbers as paper_numbers
from zfnet.viz.figures import plt

PAPER_KEYS = {"caltech101": "table4_caltech101", "caltech256": "table5_caltech256"}


def figures(result: TransferResult) -> dict[str, plt.Figure]:
    """{file stem: figure} of a transfer run: table6_ap (PASCAL), or fig9 (Caltech-256) / table4 (Caltech-101)
    and table7_layers, each beside the paper's numbers."""
    name, results = result.dataset, result.results
    if name == "pascal":
        return {"table6_ap": ap_figure(results, paper_numbers("table6_pascal"), result.chance)}
    classes = len(result.data["all"].classes)
    curves = {key: {"pretrained": r["pretrained"], "scratch": r["scratch"]} for key, r in results.items()}
    prior = paper_numbers("fig9_caltech256")["prior_best_at_60"] if name == "caltech256" else None
    stem = "fig9" if name == "caltech256" else "table4"
    table7 = paper_numbers("table7_layers")[name]
    return {stem: size_curve_figure(curves, paper_numbers(PAPER_KEYS[name]), name, classes, prior),
            "table7_layers": layer_figure({key: r["layers"] for key, r in results.items()}, table7["classifiers"],
                                          name, result.layers_size, table7["train_per_class"])}


MARKERS = {"pretrained": "o", "scratch": "s", "svm": "^", "softmax": "o"}


def _errorbar(ax, table: dict, label: str, scale: float, **style) -> None:
    xs = sorted(table, key=float)
    ax.errorbar([float(x) for x in xs], [table[x]["mean"] * scale for x in xs],   # no bar where one fold has no std
                yerr=[(table[x]["std"] or 0.0) * scale for x in xs], capsize=3, label=label, **style)


def size_curve_figure(ours: dict[str, dict[str, dict]], paper: dict | None, title: str, classes: int,
                      prior_best: float | None = None):
    """ours: {model: {"pretrained": {n: {mean, std}}, "scratch": {...}}} (fractions); paper: the same in percent."""
    fig, axes = plt.subplots(1, 2 if paper else 1, figsize=(11 if paper else 5.8, 3.8), squeeze=False)
    ax = axes[0, 0]
    for model, methods in ours.items():
        for method, table in methods.items():
            if table:
                _errorbar(ax, table, f"{model} {method}", 100, marker=MARKERS[method],
                          linestyle="-" if method == "pretrained" else "--")
    ax.axhline(100 / classes, color="grey", linewidth=0.8, linestyle=":", label=f"chance ({classes} classes)")
    ax.set(xlabel="training images per class", ylabel="mean per-class accuracy (%)", ylim=(0, 100),
           title=f"ours: {title}")
    if paper:
        right = axes[0, 1]
        for method in ("pretrained", "scratch"):
            if paper.get(method):
                _errorbar(right, paper[method], f"paper {method}", 1, marker=MARKERS[method],
                          linestyle="-" if method == "pretrained" else "--", color="black")
        if prior_best is not None:
            right.axhline(prior_best, color="tab:red", linewidth=0.8, linestyle=":",
                          label=f"best prior result with 60/class ({prior_best}%)")
        right.set(xlabel="training images per class", ylim=(0, 100), title=f"paper: {title} (ImageNet-pretrained)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def layer_figure(ours: dict[str, dict[str, dict]], paper: dict | None, title: str, size: int, paper_size: int):
    """ours: {model: {classifier: {layer: {mean, std}}}} (fractions); paper: {classifier: {layer: ...}} (%)."""
    fig, axes = plt.subplots(1, 2 if paper else 1, figsize=(11 if paper else 5.8, 3.8), squeeze=False)
    for model, classifiers in ours.items():
        for kind, table in classifiers.items():
            _errorbar(axes[0, 0], table, f"{model} {kind}", 100, marker=MARKERS[kind])
    axes[0, 0].set(title=f"ours: {title}, {size} training images per class")
    if paper:
        for kind, table in paper.items():
            _errorbar(axes[0, 1], table, f"paper {kind}", 1, marker=MARKERS[kind], color="black",
                      linestyle="-" if kind == "svm" else "--")
        axes[0, 1].set(title=f"paper: {title}, {paper_size} per class")
    for ax in axes.flat:
        ax.set(xlabel="layer", ylabel="mean per-class accuracy (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ap_figure(ours: dict[str, dict], paper: dict | None, chance: dict[str, float] | None = None):
    """ours: {model: {"ap": {class: AP or None}, "map": ...}} (fractions); paper: {"ap": {...}, "map"} (%);
    chance: {class: share of positive test images}, the expected AP of a random ranking."""
    classes = sorted({c for result in ours.values() for c in result["ap"]})
    fig, axes = plt.subplots(1, 2 if paper else 1, figsize=(11 if paper else 5.8, 0.3 * max(len(classes), 20) + 1.2),
                             squeeze=False)
    ax, height = axes[0, 0], 0.8 / max(len(ours), 1)
    for k, (model, result) in enumerate(ours.items()):
        values = [100 * (result["ap"][c] or 0.0) for c in classes]
        ax.barh([i + k * height for i in range(len(classes))], values, height=height,
                label=f"{model} (mAP {100 * (result['map'] or 0):.1f})")
    if chance:
        ax.scatter([100 * chance[c] for c in classes], [i + 0.4 - height / 2 for i in range(len(classes))],
                   marker="|", s=200, color="black", zorder=3,
                   label=f"chance: share of positives (mean {100 * sum(chance.values()) / len(chance):.1f})")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(classes))], classes, fontsize=7)
    ax.set(xlabel="average precision (%)", xlim=(0, 100), title="ours: built-in VOC-style scenes (val)")
    ax.legend(fontsize=7)
    if paper:
        names = list(paper["ap"])
        axes[0, 1].barh(range(len(names)), [paper["ap"][n] for n in names], color="grey",
                        label=f"paper (mAP {paper['map']})")
        axes[0, 1].set_yticks(range(len(names)), names, fontsize=7)
        axes[0, 1].set(xlabel="average precision (%)", xlim=(0, 100), title="paper: PASCAL VOC 2012 (test)")
        axes[0, 1].legend(fontsize=7)
    for ax in axes.flat:
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
