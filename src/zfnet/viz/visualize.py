"""Deconvnet figures (paper Figs. 2, 4, 6): the images searched, projections with their patches, layouts.

    images = ImageSet(PreparedSplit(root / "val"), mean, crop, subset(len(split), 500, seed=0))
    top = top_activations(model, images.batches(64), ["conv2"], k=9)
    projections = project_top(Deconvnet(model), images, "conv2", top["conv2"], maps=[3, 17])  # (2, 9, 3, c, c)
    window = receptive_window(model, "conv2")
    tile = projection_tile(projections[0, 0], window, y, x)   # HWC in [0, 1], the receptive field only

Conventions (ours where the paper is silent):

* The network sees the centre `crop` x `crop` window of each mean-subtracted prepared image (the
  validation view of the training code); patches are cut from the same window of the uint8 image.
* Every tile is the activation's full receptive field, `window.size` pixels square, placed where it
  lies in the image: the part outside the image is blank (mid-grey, i.e. zero, for projections,
  light grey for patches), so tiles of one layer share one size.
* Projections are shown with zero at mid-grey and each tile stretched by its own magnitude scale, the
  99.5th percentile of its nonzero magnitudes (``signed_stretch``; brighter pixels clip): a pixel
  the activation does not depend on stays grey, as in the paper.
* Maps are drawn at random (seeded by the pipeline seed and the layer name) among the maps that
  respond at all on the searched images; a map that never fires has nothing to project.
"""

from __future__ import annotations

import math
import zlib
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from zfnet.data.loading import center_crop, normalize
from zfnet.nets.evaluation import collate_images
from zfnet.probes.deconv import Deconvnet
from zfnet.probes.top9 import TopK, receptive_field
from zfnet.viz.figures import plt, to_hwc

OUTSIDE_PATCH = 0.8  # light grey: the part of a receptive field beyond the image border
_FAR = 1000  # a position far from the top-left border, to read receptive fields unclipped


def subset(total: int, count: int | None, seed: int = 0) -> list[int]:
    """`count` indices of range(total), drawn at random (seeded) and sorted; all of them if count is None
    or not smaller. Prepared splits are stored class by class, so the first `count` would be one class."""
    if count is None or count >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(total, size=count, replace=False).tolist())


class ImageSet:
    """Images of a prepared split as the network sees them, numbered 0..len-1 in `indices` order.

    `dataset[i]` gives (uint8 CHW tensor, label) (a `zfnet.data.prepare.PreparedSplit`); `mean` is the
    (3,S,S) training mean; the network input is the centre `crop` of the mean-subtracted image,
    times `scale` (the checkpoint's `input_scale`, when training used one).
    """

    def __init__(self, dataset, mean: Tensor, crop: int, indices: Sequence[int] | None = None, scale: float = 1.0):
        self.dataset = dataset
        self.mean = mean.float()
        self.crop = crop
        self.scale = scale
        self.indices = list(range(len(dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def raw(self, i: int) -> Tensor:
        """Image i (position in this set) as uint8 (3, crop, crop): what patches are cut from."""
        return center_crop(self.dataset[self.indices[i]][0], self.crop)

    def inputs(self, positions: Sequence[int] | Tensor) -> Tensor:
        """Network inputs (n, 3, crop, crop), float32, for the images at these positions."""
        images = torch.stack([self.dataset[self.indices[int(i)]][0] for i in positions])
        return center_crop(normalize(images, self.mean, self.scale), self.crop)

    def batches(self, batch_size: int, workers: int = 0, device: torch.device | str = "cpu") -> Iterator[Tensor]:
        """The whole set in order, `batch_size` images at a time (nothing else is held), on `device`.

        `workers` DataLoader processes read the uint8 images (pinned for CUDA); the crop and the mean
        subtraction run on `device`, the subtraction on the crop only. The same numbers as `inputs`: the same
        elementwise operations on the same pixels, in the same order.
        """
        device = torch.device(device)
        mean = center_crop(self.mean, self.crop).to(device)
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.dataset, self.indices), batch_size,
                                             num_workers=workers, collate_fn=collate_images,
                                             pin_memory=device.type == "cuda",
                                             generator=torch.Generator())  # leaves the global RNG untouched
        for images, _ in loader:
            yield normalize(center_crop(images.to(device, non_blocking=True), self.crop), mean, self.scale)


# --------------------------------------------------------------------------- receptive fields


class Window(NamedTuple):
    """Receptive field of a layer: activation (y, x) sees rows start + y*jump .. + size (unclipped)."""

    size: int
    jump: int
    start: int

    def origin(self, y: int, x: int) -> tuple[int, int]:
        return self.start + y * self.jump, self.start + x * self.jump


def receptive_window(model: nn.Module, layer: str) -> Window:
    """The layer's receptive field size, step and offset, read off `zfnet.probes.top9.receptive_field`."""
    big = (10**9, 10**9)
    y0, y1, _, _ = receptive_field(model, layer, _FAR, _FAR, input_size=big)
    next_y0 = receptive_field(model, layer, _FAR + 1, _FAR + 1, input_size=big)[0]
    jump = next_y0 - y0
    return Window(size=y1 - y0, jump=jump, start=y0 - _FAR * jump)


def cut(image, y0: int, x0: int, size: int, fill: float = 0.0) -> np.ndarray:
    """The size x size window of `image` (C,H,W array or CPU tensor) with top-left (y0, x0), as a float32
    array; the part outside the image is `fill`."""
    image = np.asarray(image, dtype=np.float32)
    c, h, w = image.shape
    out = np.full((c, size, size), fill, dtype=np.float32)
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + size, h), min(x0 + size, w)
    if bottom > top and right > left:
        out[:, top - y0:bottom - y0, left - x0:right - x0] = image[:, top:bottom, left:right]
    return out


# --------------------------------------------------------------------------- projections


def responsive_maps(top: TopK) -> list[int]:
    """Maps whose strongest activation on the searched images is positive."""
    return torch.nonzero(top.values[:, 0] > 0).flatten().tolist()


def choose_maps(candidates: Sequence[int], count: int, seed: int, layer: str) -> list[int]:
    """`count` of `candidates` at random (seeded by seed and layer name), sorted."""
    rng = np.random.default_rng([seed, zlib.crc32(layer.encode())])
    if count >= len(candidates):
        return sorted(candidates)
    return sorted(rng.choice(list(candidates), size=count, replace=False).tolist())


@torch.no_grad()
def project_top(
    deconv: Deconvnet, images: ImageSet, layer: str, top: TopK, maps: Sequence[int], batch_size: int = 64
) -> Tensor:
    """Project each of the top-k activations of each map in `maps`, each on its own image.

    Returns (len(maps), k, 3, crop, crop) on the CPU; [m, r] is rank r of map maps[m].
    """
    maps_t = torch.as_tensor(list(maps), dtype=torch.long)
    k = top.values.shape[1]
    image_index = top.image_index[maps_t].flatten()
    channel = maps_t.repeat_interleave(k)
    position = torch.stack([top.y[maps_t].flatten(), top.x[maps_t].flatten()], dim=1)
    device = next(deconv.model.parameters()).device
    out = []
    for start in range(0, len(channel), batch_size):
        part = slice(start, start + batch_size)
        inputs = images.inputs(image_index[part]).to(device)
        out.append(deconv.project(inputs, layer, channel[part].to(device), position[part].to(device)).cpu())
    return torch.cat(out).unflatten(0, (len(maps_t), k))


def signed_stretch(image: Tensor | np.ndarray, quantile: float = 0.995) -> np.ndarray:
    """Zero to mid-grey, +-m to 1 and 0, where m is the `quantile` of the nonzero magnitudes (larger ones
    clip): a few extreme pixels would otherwise leave the rest of a projection invisible. A blank image
    stays grey."""
    array = image.detach().cpu().float().numpy() if isinstance(image, Tensor) else np.asarray(image, np.float32)
    magnitude = np.abs(array)
    nonzero = magnitude[magnitude > 1e-12]
    if nonzero.size == 0:
        return np.full_like(array, 0.5)
    scale = np.quantile(nonzero, quantile) if quantile < 1 else nonzero.max()
    return np.clip(0.5 + array / (2 * scale), 0.0, 1.0)


def projection_tile(projection: Tensor, window: Window, y: int, x: int) -> np.ndarray:
    """HWC tile in [0, 1]: the receptive field of activation (y, x), signed-stretched."""
    return to_hwc(signed_stretch(cut(projection, *window.origin(y, x), window.size, fill=0.0)))


def patch_tile(image: Tensor, window: Window, y: int, x: int) -> np.ndarray:
    """HWC tile in [0, 1]: the image patch under activation (y, x) (uint8 CHW image in)."""
    return to_hwc(cut(np.asarray(image) / 255.0, *window.origin(y, x), window.size, fill=OUTSIDE_PATCH))


def blank_tile(window: Window) -> np.ndarray:
    """A white tile: the place of an activation that does not exist (a map firing on fewer than k images)."""
    return np.ones((window.size, window.size, 3), dtype=np.float32)


# --------------------------------------------------------------------------- layout


def mosaic(tiles: Sequence[np.ndarray], ncols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Equal-size HWC tiles in a grid, `pad` pixels of `fill` between and around them."""
    h, w = tiles[0].shape[:2]
    nrows = math.ceil(len(tiles) / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), fill, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        tile = np.asarray(tile, dtype=np.float32)
        if tile.ndim == 2:
            tile = np.repeat(tile[..., None], 3, axis=2)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return out


def block_mosaic(blocks: Sequence[Sequence[np.ndarray]], pad: int = 1) -> np.ndarray:
    """Each block (k tiles) as a square grid, the blocks themselves in a square grid with wider gaps.

    The paper's Fig. 2 panel: one 3x3 block per feature map.
    """
    per_block = math.ceil(math.sqrt(len(blocks[0])))
    grids = [mosaic(block, per_block, pad=pad) for block in blocks]
    gap = max(2, grids[0].shape[0] // 12)
    return mosaic(grids, math.ceil(math.sqrt(len(grids))), pad=gap, fill=1.0)


def top_figure(projections: np.ndarray, patches: np.ndarray, title: str) -> plt.Figure:
    """Fig. 2 style: the projection blocks beside the matching patch blocks."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.3))
    for ax, image, name in zip(axes, (projections, patches), ("projections", "image patches")):
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def evolution_figure(tiles: Sequence[Sequence[np.ndarray]], epochs: Sequence[int], maps: Sequence[int],
                     title: str) -> plt.Figure:
    """Fig. 4 style: one row per feature map, one column per training snapshot."""
    nrows, ncols = len(tiles), len(epochs)
    cell = 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell + 0.6, nrows * cell + 0.6), squeeze=False)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            ax = axes[r, c]
            ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {epochs[c]}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"map {maps[r]}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


# --------------------------------------------------------------------------- loading


def image_set(dataset, hparams: dict, indices: Sequence[int] | None = None) -> ImageSet:
    """The images of `dataset` as the checkpoint's network saw them in validation."""
    return ImageSet(dataset, hparams["mean"], hparams["crop"], indices, scale=float(hparams.get("input_scale", 1.0)))


def checked_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    """`layers` (config `visualize.layers`), or a UserError naming those that are not conv layers of `model`."""
    from zfnet.errors import UserError

    unknown = [layer for layer in layers if layer not in model.conv_layer_names]
    if unknown:
        raise UserError(f"visualize.layers: {', '.join(unknown)} not conv layers of this model; "
                        f"present: {', '.join(model.conv_layer_names)}")
    return list(layers)


def device_for(accelerator: str) -> torch.device:
    """CUDA when the trainer config asks for a GPU and one is there, else the CPU."""
    wants_gpu = accelerator in ("gpu", "cuda", "auto")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------- figure helpers


def _or_nan(value) -> float:
    """A metrics value that may be None (no data) as a float, NaN for None."""
    return float("nan") if value is None else float(value)
