"""The report's sections: for each figure (1-9) and table (1-7) of the paper, its numbers, ours, our
figures, the verdicts on its claims and the W&B panels that show the same logged values.

`build_sections(results)` is the whole report as data; `zfnet.report.html` and
`zfnet.report.wandb_report` only render it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zfnet import paper
from zfnet.report import claims, transfer_claims
from zfnet.report.decision import Settings
from zfnet.report.rules import dig, number
from zfnet.report.spec import NOT_RUN, Panel, Section, Table


@dataclass
class Results:
    """Everything a report reads: metrics files (None = the stage did not run), figures and the config."""

    metrics: dict[str, dict | None]   # by file stem: "train_zfnet", "table3", ...
    plots: Path                       # the plots folder
    config: dict                      # the resolved pipeline config (params.yaml)
    parameters: dict[str, int]        # our models built at the paper's size (claims.parameter_counts)

    @property
    def models(self) -> list[str]:
        """The models the per-model stages ran for (`visualize.models`)."""
        return list(dig(self.config, "visualize.models", ["zfnet", "alexnet"]))

    def get(self, stem: str) -> dict | None:
        return self.metrics.get(stem)

    @property
    def settings(self) -> Settings:
        """How the rules compute their intervals and which margins they state (`report.statistics`, `.margins`)."""
        return Settings.from_config(self.config)

    def images(self, *relative: str) -> list[tuple[str, Path]]:
        """(caption, path) of the figures that exist, in order."""
        return [(f"{self.plots.name}/{name}", self.plots / name) for name in relative if (self.plots / name).is_file()]

    @property
    def val_images(self) -> int | None:
        value = number(dig(self.get("prepare"), "val.images", None))
        return int(value) if value else None

    def real(self, dataset: str) -> bool:
        """Whether a dataset is the real one (not the built-in synthetic stand-in)."""
        if dataset == "imagenet":
            return dig(self.config, "data.name", "synthetic") != "synthetic"
        root = str(dig(self.config, f"transfer.roots.{dataset}", "") or "")
        return bool(root) and Path(root) != Path(dig(self.config, "paths.synthetic", "data/synthetic"))


def scale(results: Results) -> str:
    """One line: the data and scale the numbers were measured at."""
    c = results.config
    data = "the built-in synthetic data" if not results.real("imagenet") else f"{dig(c, 'data.name')} at {dig(c, 'data.root')}"
    widths = ", ".join(f"{m} width {dig(c, f'models.{m}.width', '?')}" for m in results.models)
    return (f"{data}; {results.val_images or '?'} validation images; {widths}; {dig(c, 'train.crop', '?')} px crops; "
            f"{dig(c, 'train.epochs', '?')} epochs; seed {dig(c, 'seed', '?')}")


def _pct(value: Any, digits: int = 1) -> str:
    value = number(value)
    return "missing" if value is None else f"{100 * value:.{digits}f}"


def _num(value: Any, digits: int = 3) -> str:
    value = number(value)
    return "missing" if value is None else f"{value:.{digits}f}"


def _status(*metrics: dict | None) -> str:
    return "ran" if any(m is not None for m in metrics) else NOT_RUN


def _media(job: str, keys: list[str], title: str) -> Panel:
    return Panel("media", tuple(keys), job, title)


# ----------------------------------------------------------------------- figures


def fig1(r: Results) -> Section:
    p = paper.numbers("fig1_deconvnet")
    return Section(
        "fig1", "Fig. 1: the deconvnet", f"{p['caption']}. Claim: {p['claims'][0]}.",
        "zfnet.probes.deconv (unpool with switches, rectify, transposed filters); tests/probes/test_deconv.py checks "
        "it against autograd and captum", _status(*(r.get(f"visualize_{m}") for m in r.models)),
        images=r.images(*(f"visualize_{m}/top9_conv5.png" for m in r.models)),
        panels=[_media("visualize", [f"visualize/{m}/top9_conv5" for m in r.models], "layer-5 projections")],
        notes="No number to compare: the figure shows how projections are made. Ours are exact by test, not by a verdict.")


def fig2(r: Results) -> Section:
    p = paper.numbers("fig2_top9")
    rows = [[m, layer, _num(dig(r.get(f"visualize_{m}"), f"{layer}.maps"), 0),
             _pct(dig(r.get(f"visualize_{m}"), f"{layer}.silent_share")), _num(dig(r.get(f"visualize_{m}"), f"{layer}.topk_mean"), 2)]
            for m in r.models for layer in claims.LAYERS]
    return Section(
        "fig2", "Fig. 2: top-9 activations projected", f"{p['caption']}. Claim (qualitative): {p['claims'][0]}.",
        f"visualize stage on {scale(r)}", _status(*(r.get(f"visualize_{m}") for m in r.models)),
        tables=[Table(["model", "layer", "maps", "silent maps %", "mean of the top-9 activations"], rows)],
        images=r.images(*(f"visualize_{m}/top9_{layer}.png" for m in r.models for layer in claims.LAYERS)),
        panels=[_media("visualize", [f"visualize/{m}/top9_{layer}" for layer in claims.LAYERS], f"{m}: top 9") for m in r.models],
        notes="A qualitative figure: look at it. The paper's reading of it (what each layer encodes) has no number to test.")


def fig3(r: Results) -> Section:
    p = paper.numbers("fig3_architecture")

    def row(m: str) -> list[str]:
        counted = f"{r.parameters[m]:,}" if m in r.parameters else "missing"
        trained = r.get(f"train_{m}")  # zfnet_big trains only in the ablations pipeline
        if trained is None:
            return [m, f"{p['parameters'][m]:,}", counted, "not run", "not run"]
        return [m, f"{p['parameters'][m]:,}", counted, _num(dig(trained, "parameters"), 0),
                _pct(dig(trained, "val_top1_error_10crop"))]

    return Section(
        "fig3", "Fig. 3: the ZF architecture",
        f"{p['caption']}. Parameters at {p['input_size']} px, {p['classes']} classes: "
        + ", ".join(f"{k} {v:,}" for k, v in p["parameters"].items()) + ".",
        f"parameters counted on our models built at the paper's size (by this stage); trained at {scale(r)}",
        tables=[Table(["model", "paper parameters", "ours at the paper's size", "ours as trained", "10-crop val top-1 %"],
                      [row(m) for m in p["parameters"]])],
        images=r.images(*(f"train_{m}/curves.png" for m in r.models)),
        verdicts=claims.parameter_counts(r.parameters),
        panels=[Panel("line", ("train/top1_error", "val/top1_error"), "train", "training curves", x="epoch"),
                _media("train", [f"train/{m}/curves" for m in r.models], "curves")])


def fig4(r: Results) -> Section:
    p = paper.numbers("fig4_evolution")
    rows = []
    for m in r.models:
        evo = r.get(f"evolution_{m}")
        for layer in claims.LAYERS:
            distances = dig(evo, f"{layer}.distance_to_last", {}) or {}
            rows.append([m, layer, ", ".join(f"{k.split('_')[-1].lstrip('0')}: {_num(v, 2)}" for k, v in sorted(distances.items()))])
    return Section(
        "fig4", "Fig. 4: feature evolution during training", f"{p['caption']}. Claim: {p['claims'][0]}.",
        f"evolution stage: snapshots at epochs {dig(r.config, 'train.snapshot_epochs', '?')} of {scale(r)}",
        _status(*(r.get(f"evolution_{m}") for m in r.models)),
        tables=[Table(["model", "layer", "distance of the weights to the last snapshot's, relative (epoch: value)"], rows)],
        images=r.images(*(f"evolution_{m}/{n}.png" for m in r.models for n in ("convergence", "evolution_conv1", "evolution_conv5"))),
        verdicts=[claims.lower_layers_converge_first(r.get(f"evolution_{m}"), m, settings=r.settings) for m in r.models],
        panels=[_media("evolution", [f"evolution/{m}/convergence", f"evolution/{m}/conv1", f"evolution/{m}/conv5"], m)
                for m in r.models])


def fig5(r: Results) -> Section:
    p = paper.numbers("fig5_invariance")
    rows = []
    for m in r.models:
        trained = r.get(f"invariance_{m}")
        for name, inv in ((m, trained), (f"{m} untrained (control)", dig(trained, "untrained", None))):
            for t in ("translation", "scale", "rotation"):
                rows.append([name, t, _num(dig(inv, f"{t}.small_change.layer1"), 2),
                             _num(dig(inv, f"{t}.small_change.layer7"), 2), _num(dig(inv, f"{t}.output.mean_p_true"), 2)])
    return Section(
        "fig5", "Fig. 5: invariance to translation, scale and rotation",
        f"{p['caption']}. Claims: " + "; ".join(p["claims"]) + ".",
        f"invariance stage: {dig(r.get('invariance_zfnet') or r.get('invariance_alexnet'), 'images', '?')} validation "
        f"images of {scale(r)}", _status(*(r.get(f"invariance_{m}") for m in r.models)),
        tables=[Table(["model", "transform", "layer 1 relative change, small steps", "layer 7", "mean p(true)"], rows)],
        images=r.images(*(f"invariance_{m}/{n}.png" for m in r.models for n in ("fig5", "classes_rotation"))),
        verdicts=[v for m in r.models for v in claims.invariance(r.get(f"invariance_{m}"), m, settings=r.settings)],
        notes="Each claim is judged per image with a bootstrap CI, and again on the same architecture untrained "
              "(random init, the control rows): a claim the untrained net shows too is not counted. Recovery at the "
              "symmetry angles is geometry's (a symmetric object turned by its symmetry angle is the same object); "
              "the network's part is the contrast: asymmetric classes lose p(true) under rotation, not under "
              "translation and scale.",
        panels=[_media("invariance", [f"invariance/{m}/fig5", f"invariance/{m}/classes_rotation"], m) for m in r.models]
        + [Panel("bar", tuple(f"invariance/{m}/{t}/small_change/{layer}" for m in r.models for t in ("translation", "scale")
                              for layer in ("layer1", "layer7")), "invariance", "relative change, small steps")])


def fig6(r: Results) -> Section:
    p, arch = paper.numbers("fig6_architecture_selection"), r.get("architecture")
    rows = [[m, _num(dig(arch, f"{m}.conv1_dead.count"), 0), _pct(dig(arch, f"{m}.conv1_centroid_frequency.band_shares.mid"), 0),
             _num(dig(arch, f"{m}.conv1_above_nyquist.spread.median"), 2), _num(dig(arch, f"{m}.conv2_lattice.projections.median"), 3)]
            for m in r.models]
    return Section(
        "fig6", "Fig. 6: layer-1 and layer-2 features, ZF against AlexNet",
        f"{p['caption']}. Claims: " + "; ".join(p["claims"]) + ".",
        f"architecture stage on {scale(r)}; definitions in zfnet.probes.filters", _status(arch),
        tables=[Table(["model", "dead conv1 filters", "mid-frequency filters %", "power above Nyquist, median",
                       "lattice share of conv2 projections, median"], rows)],
        images=r.images("architecture/conv1_filters.png", "architecture/conv2_projections.png", "architecture/measures.png"),
        verdicts=claims.architecture(arch, settings=r.settings),
        panels=[_media("architecture", ["architecture/conv1_filters", "architecture/conv2_projections", "architecture/measures"],
                       "layer 1 and layer 2")])


def fig7(r: Results) -> Section:
    p = paper.numbers("fig7_occlusion")
    def row(name: str, block: dict | None) -> list[str]:
        return [name, _num(dig(block, "p_true_drop.object"), 4), _num(dig(block, "p_true_drop.background"), 4),
                _pct(dig(block, "layer5_map_drop.share_of_images_where_covering_drops_more")),
                _pct(dig(block, "pointing_game.accuracy")), _pct(dig(block, "pointing_game.centre_baseline"))]

    rows = [row(m, r.get(f"occlusion_{m}")) for m in r.models]
    rows += [row(f"{m} untrained (negative control)", dig(r.get(f"occlusion_{m}"), "untrained", None))
             for m in r.models if dig(r.get(f"occlusion_{m}"), "untrained", None)]
    occ = r.get("occlusion_zfnet") or r.get("occlusion_alexnet")
    return Section(
        "fig7", "Fig. 7: occlusion sensitivity", f"{p['caption']}. Claims: " + "; ".join(p["claims"]) + ".",
        f"occlusion stage: {dig(occ, 'patch', '?')} px grey square, stride {dig(occ, 'stride', '?')}, "
        f"{dig(occ, 'images', '?')} validation images of {scale(r)}", _status(*(r.get(f"occlusion_{m}") for m in r.models)),
        tables=[Table(["model", "p(true) drop, occluder on object", "on background", "layer-5 map drops most on its part, % of images",
                       "pointing game %", "centre baseline %"], rows)],
        images=r.images(*(f"occlusion_{m}/{n}.png" for m in r.models for n in ("measures", "fig7_dog_face", "fig7_car"))),
        verdicts=[v for m in r.models for v in claims.occlusion(r.get(f"occlusion_{m}"), m, settings=r.settings)],
        panels=[_media("occlusion", [f"occlusion/{m}/measures", f"occlusion/{m}/fig7_dog_face"], m) for m in r.models]
        + [Panel("bar", tuple(f"occlusion/{m}/p_true_drop/{w}" for m in r.models for w in ("object", "background")),
                 "occlusion", "p(true) drop")])


def fig8(r: Results) -> Section:
    p = paper.numbers("fig8_correspondence")
    return Section(
        "fig8", "Fig. 8: the occluded parts for correspondence", p["caption"] + ".",
        f"correspondence stage on the face classes of {scale(r)}", _status(*(r.get(f"correspondence_{m}") for m in r.models)),
        images=r.images(*(f"correspondence_{m}/fig8.png" for m in r.models)),
        panels=[_media("correspondence", [f"correspondence/{m}/fig8" for m in r.models], "occluded parts")],
        notes="The figure shows the inputs of Table 1; its verdicts are there.")


def fig9(r: Results) -> Section:
    p, t = paper.numbers("fig9_caltech256"), r.get("transfer_caltech256")
    sizes = sorted({s for m in r.models for s in (dig(t, f"{m}.pretrained", {}) or {})}, key=int)
    rows = [[m, *(_pct(dig(t, f"{m}.pretrained.{s}.mean")) for s in sizes)] for m in r.models]
    return Section(
        "fig9", "Fig. 9: Caltech-256 accuracy against training images per class",
        f"{p['caption']} ({p['prior_best_at_60']}%).", _transfer_config(r, "caltech256"), _status(t),
        tables=[Table(["model", *(f"{s}/class %" for s in sizes)], rows, "pretrained, mean per-class accuracy")],
        images=r.images("transfer_caltech256/fig9.png"),
        verdicts=[claims.beats_prior_best(t, m, r.real("caltech256"), settings=r.settings) for m in r.models],
        panels=[_media("transfer", ["transfer/caltech256/fig9"], "Fig. 9"),
                Panel("bar", tuple(f"transfer/caltech256/{m}/pretrained/{s}/mean" for m in r.models for s in sizes[:6]),
                      "transfer", "pretrained accuracy, few per class")])


def _transfer_config(r: Results, dataset: str) -> str:
    data = r.get(f"transfer_{dataset}")
    source = "the real dataset" if r.real(dataset) else "the built-in stand-in"
    if dataset == "pascal":
        split = transfer_claims.pascal_split(data)
        protocol = (f"{dig(data, 'data.test.classes', '?')} classes, trained on VOC 2012 {split.get('train', '?')}, "
                    f"scored on {split.get('test', '?')}")
    else:
        protocol = (f"{dig(data, 'data.all.classes', '?')} classes, {dig(data, 'data.folds', '?')} folds "
                    f"({dig(data, 'data.scratch_folds', '?')} from scratch), tested on up to "
                    f"{dig(data, 'data.test_per_class', '?')} images per class, ± is the std over folds "
                    f"(ddof {dig(data, 'data.std_ddof', 0)})")
    return (f"transfer stage on {source} at {dig(r.config, f'transfer.roots.{dataset}', '?')} ({protocol}), "
            f"features of the nets trained on {scale(r)}")


# ----------------------------------------------------------------------- tables


def table1(r: Results) -> Section:
    p = paper.numbers("table1_correspondence")
    rows, both = [], []
    for row, printed in p["rows"].items():
        cells = [f"{printed[layer]['mean']:.3f} ± {printed[layer]['std']:.3f}" for layer in ("layer5", "layer7")]
        changed = []
        for m in r.models:
            table = dig(r.get(f"correspondence_{m}"), f"average.table.{row}", None)
            cells += [f"{_num(dig(table, f'{layer}.mean'))} ± {_num(dig(table, f'{layer}.std'))}" for layer in ("layer5", "layer7")]
            changed += [f"{_num(dig(table, f'{layer}.mean_changed_in_both'))} ± {_num(dig(table, f'{layer}.std_changed_in_both'))}"
                        for layer in ("layer5", "layer7")]
        rows.append([row.replace("_", " "), *cells])
        both.append([row.replace("_", " "), *changed])
    tensors = {m: dig(r.get(f"correspondence_{m}"), "layers.layer5", None) or "layer 5" for m in r.models}
    ours = [f"{m} {name}" for m in r.models for name in (tensors[m], "relu7")]
    return Section(
        "table1", "Table 1: correspondence of parts across images",
        f"{p['caption']}. Claims: " + "; ".join(p["claims"]) + ".",
        f"correspondence stage on the frontal faces of {scale(r)}", _status(*(r.get(f"correspondence_{m}") for m in r.models)),
        tables=[Table(["occluded", "paper layer 5 (pool5)", "paper layer 7", *ours], rows,
                      "Delta, mean ± std over the draws of images within a class, averaged over the classes"),
                Table(["occluded", *ours], both, "ours, counting only the coordinates that changed in both images of "
                      "a pair (a unit that fired in one image only is left out)")],
        images=r.images(*(f"correspondence_{m}/table1.png" for m in r.models)),
        verdicts=[v for m in r.models for v in claims.correspondence(r.get(f"correspondence_{m}"), m, settings=r.settings)],
        panels=[Panel("bar", tuple(f"correspondence/{m}/average/{row}/layer5" for m in r.models for row in p["rows"]),
                      "correspondence", "Delta at layer 5"),
                _media("correspondence", [f"correspondence/{m}/table1" for m in r.models], "Table 1")])


def table2(r: Results) -> Section:
    p, t2 = paper.numbers("table2_imagenet"), r.get("table2")
    ours = {"replication": dig(r.get("train_alexnet"), "val_top1_error_10crop", None),
            "zf": dig(r.get("train_zfnet"), "val_top1_error_10crop", None)}

    def ours_cell(key: str) -> str:  # single nets from the train stages, ensembles from the ablations pipeline
        if key == "krizhevsky":
            return ""
        if t2 is None and key not in ours:
            return "not run"
        return _pct(dig(t2, f"entries.{key}.val_top1_error", ours.get(key)))

    rows = [[row["label"], f"{row['val_top1']}", f"{row['val_top5']}", ours_cell(key)] for key, row in p["rows"].items()]
    return Section(
        "table2", "Table 2: ImageNet error, single nets and ensembles", f"{p['caption']}.",
        f"train stages (single nets) and the ablations pipeline's table2 stage (ensembles; `dvc repro ablations/dvc.yaml`) "
        f"on {scale(r)}; 10-crop errors", _status(r.get("train_zfnet"), r.get("train_alexnet")),
        tables=[Table(["model", "paper val top-1 %", "paper val top-5 %", "ours val top-1 %"], rows)],
        images=r.images("table2/table2.png"),
        verdicts=[claims.zf_beats_alexnet(r.get("train_zfnet"), r.get("train_alexnet"), r.val_images, settings=r.settings),
                  *claims.ensembles(t2, r.val_images, settings=r.settings),
                  claims.absolute("ZF reaches the paper's 38.4% val top-1 error", "zfnet",
                                  dig(r.get("train_zfnet"), "val_top1_error_10crop", None), p["rows"]["zf"]["val_top1"],
                                  r.real("imagenet"), r.get("train_zfnet") is not None, images=r.val_images,
                                  paper_images=p["val_images"], settings=r.settings)],
        panels=[Panel("bar", ("final/val_top1_error_10crop", "final/train_top1_error"), "train", "single nets"),
                Panel("scalar", tuple(f"table2/entries/{e}/val_top1_error" for e in ("zf_x5", "zf_x5_and_big")
                                      if number(dig(t2, f"entries.{e}.val_top1_error", None)) is not None), "table2", "ensembles"),
                _media("table2", ["table2/figure"], "Table 2")],
        notes="" if t2 else "The ensembles come from `dvc repro ablations/dvc.yaml` (16 training runs); not run here.")


def table3(r: Results) -> Section:
    p, t3 = paper.numbers("table3_ablations"), r.get("table3")
    rows = [[row["label"], f"{row['train_top1']} / {row['val_top1']}",
             f"{_num(dig(t3, f'rows.{key}.ours.train_top1'), 1)} / {_num(dig(t3, f'rows.{key}.ours.val_top1'), 1)}"]
            for key, row in p["rows"].items()]
    return Section(
        "table3", "Table 3: architecture changes (ablations)", f"{p['caption']}.",
        f"the ablations pipeline (`dvc repro ablations/dvc.yaml`: one training run per row) on {scale(r)}", _status(t3),
        tables=[Table(["row", "paper train / val top-1 %", "ours train / val top-1 %"], rows)],
        images=r.images("table3/table3.png"),
        verdicts=claims.ablations(t3, r.val_images, settings=r.settings),
        panels=[Panel("bar", tuple(f"table3/{key}/ours/val_top1" for key in p["rows"]
                                   if number(dig(t3, f"rows.{key}.ours.val_top1", None)) is not None), "table3", "val top-1, ours"),
                _media("table3", ["table3/figure"], "Table 3")],
        notes=("Run `dvc repro ablations/dvc.yaml` (16 training runs), then `dvc repro -f report`." if t3 is None else
               "Read from metrics/table3.json as last written by the ablations pipeline (not a dependency of "
               "`dvc repro`: run `dvc repro -f report` after it)."))


def _accuracy_rows(r: Results, dataset: str, printed: dict) -> list[list[str]]:
    t = r.get(f"transfer_{dataset}")
    rows = []
    for method in ("pretrained", "scratch"):
        for size, cell in printed[method].items():
            rows.append([method, size, f"{cell['mean']} ± {cell['std']}",
                         *(_mean_std(dig(t, f"{m}.{method}.{size}", None)) for m in r.models)])
    return rows


def _mean_std(cell: Any) -> str:
    """ "mean ± std" in %, the std "n/a" where one fold leaves it undefined."""
    std = dig(cell, "std", None)
    return f"{_pct(dig(cell, 'mean', None))} ± {'n/a' if std is None and cell else _pct(std)}"


def _caltech(r: Results, dataset: str, key: str, number_: int, title: str) -> Section:
    p, t = paper.numbers(key), r.get(f"transfer_{dataset}")
    sizes = sorted(p["pretrained"], key=int)
    ran = dig(t, f"{r.models[0]}", {}) or {}
    few = min(set(ran.get("pretrained", {})) & set(ran.get("scratch", {})), key=int, default=sizes[0])  # as logged
    return Section(
        f"table{number_}", title, f"{p['caption']}.", _transfer_config(r, dataset), _status(t),
        tables=[Table(["", "per class", "paper %", *(f"{m} %" for m in r.models)], _accuracy_rows(r, dataset, p))],
        images=r.images(f"transfer_{dataset}/table4.png" if dataset == "caltech101" else f"transfer_{dataset}/fig9.png"),
        verdicts=[*(claims.pretrained_beats_scratch(t, m, dataset, settings=r.settings) for m in r.models),
                  *(transfer_claims.caltech_absolute(t, m, dataset, sizes[-1], p["pretrained"][sizes[-1]]["mean"],
                                                     r.real(dataset), r.settings) for m in r.models)],
        panels=[Panel("bar", tuple(f"transfer/{dataset}/{m}/{method}/{few}/mean" for m in r.models for method in ("pretrained", "scratch")),
                      "transfer", f"pretrained vs scratch, {few} per class"),
                _media("transfer", [f"transfer/{dataset}/{'table4' if dataset == 'caltech101' else 'fig9'}"], title)])


def table4(r: Results) -> Section:
    return _caltech(r, "caltech101", "table4_caltech101", 4, "Table 4: Caltech-101")


def table5(r: Results) -> Section:
    return _caltech(r, "caltech256", "table5_caltech256", 5, "Table 5: Caltech-256")


def table6(r: Results) -> Section:
    p, t = paper.numbers("table6_pascal"), r.get("transfer_pascal")
    rows = [["mAP", f"{p['map']}", *(_pct(dig(t, f"{m}.map")) for m in r.models)],
            ["chance (random ranking)", "", *([_pct(dig(t, "data.chance_map"))] * len(r.models))]]
    rows += [[c, "", *(_pct(dig(t, f"{m}.ap.{c}")) for m in r.models)] for c in sorted(dig(t, f"{r.models[0]}.ap", {}) or {})]
    prior = ", ".join(f"{k} {v}" for k, v in p["prior_best_map"].items())
    return Section(
        "table6", "Table 6: PASCAL VOC 2012 classification", f"{p['caption']}: mAP {p['map']} (prior: {prior}).",
        _transfer_config(r, "pascal"), _status(t),
        tables=[Table(["class", "paper AP %", *(f"{m} AP %" for m in r.models)], rows)],
        images=r.images("transfer_pascal/table6_ap.png"),
        verdicts=[transfer_claims.pascal_map(t, m, r.real("pascal"), r.settings) for m in r.models],
        panels=[Panel("bar", tuple(f"transfer/pascal/{m}/map" for m in r.models), "transfer", "mAP"),
                _media("transfer", ["transfer/pascal/table6_ap"], "AP per class")],
        notes=(f"Ours is scored on VOC 2012 {transfer_claims.pascal_split(t).get('test', '(split not recorded)')}, the "
               f"paper's {p['map']} on the test set (trained on train+val; its labels are not public): the two are not "
               "comparable, and the verdict says so. " + ("" if r.real("pascal") else "The built-in scenes use the 12 "
               "transfer classes, not VOC's 20; only the comparison with chance is meaningful here.")))


def table7(r: Results) -> Section:
    p = paper.numbers("table7_layers")
    rows = []
    for dataset in ("caltech101", "caltech256"):
        t = r.get(f"transfer_{dataset}")
        for kind in ("svm", "softmax"):
            printed = p[dataset]["classifiers"].get(kind, {})
            for layer in ("1", "2", "3", "4", "5", "7"):
                cell = printed.get(layer)
                rows.append([dataset, kind, layer, f"{cell['mean']} ± {cell['std']}" if cell else "",
                             *(_pct(dig(t, f"{m}.layers.{kind}.{layer}.mean")) for m in r.models)])
    return Section(
        "table7", "Table 7: classifiers on one layer's features", f"{p['caption']}.",
        _transfer_config(r, "caltech101") + "; " + _transfer_config(r, "caltech256"),
        _status(r.get("transfer_caltech101"), r.get("transfer_caltech256")),
        tables=[Table(["dataset", "classifier", "layer", "paper %", *(f"{m} %" for m in r.models)], rows)],
        images=r.images("transfer_caltech101/table7_layers.png", "transfer_caltech256/table7_layers.png"),
        verdicts=[v for d in ("caltech101", "caltech256") for m in r.models
                  for v in claims.rises_with_depth(r.get(f"transfer_{d}"), m, d, settings=r.settings)],
        panels=[Panel("bar", tuple(f"transfer/caltech101/{m}/layers/svm/{layer}/mean" for m in r.models
                                   for layer in sorted(dig(r.get("transfer_caltech101"), f"{m}.layers.svm", {}) or {}, key=int)),
                      "transfer", "SVM accuracy per layer"),
                _media("transfer", [f"transfer/{d}/table7_layers" for d in ("caltech101", "caltech256")], "per layer")])


SECTIONS = (fig1, fig2, fig3, fig4, fig5, fig6, fig7, fig8, fig9,
            table1, table2, table3, table4, table5, table6, table7)


def build_sections(results: Results) -> list[Section]:
    return [make(results) for make in SECTIONS]
