"""Rendering one image: palette and textures, the object placed by a pose, clutter, lighting and noise;
also clutter-only images (Caltech backgrounds) and multi-object scenes (VOC)."""

from __future__ import annotations

import colorsys
import math
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from zfnet.data.synthetic.catalogue import CLASS_ORDER, CLASSES, SyntheticSpec, _class_def
from zfnet.data.synthetic.shapes import (
    COLORS,
    HOLE,
    IRIS_COLORS,
    ClassDef,
    Part,
    circle,
    ellipse,
    make_jitter,
    rect,
    regular,
)
from zfnet.errors import UserError

SUPERSAMPLE = 2  # draw at 2x and average down: anti-aliased edges for little cost


# ----------------------------------------------------------------------------- colours and textures


def _jitter_color(rgb, rng: np.random.Generator, amount: float = 1.0) -> np.ndarray:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h = (h + amount * rng.uniform(-0.03, 0.03)) % 1.0
    s = min(max(s * (1 + amount * rng.uniform(-0.25, 0.15)), 0.0), 1.0)
    v = min(max(v * (1 + amount * rng.uniform(-0.22, 0.12)), 0.0), 1.0)
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255


class Palette:
    """One image's colours: role ("main", "second", "iris" or a COLORS name) -> jittered RGB."""

    def __init__(self, cls: ClassDef, rng: np.random.Generator):
        main = cls.colors[rng.integers(len(cls.colors))]
        seconds = [c for c in cls.seconds if c != main] or list(cls.seconds)
        second = seconds[rng.integers(len(seconds))]
        self.iris = IRIS_COLORS[rng.integers(len(IRIS_COLORS))]
        self.chosen = {"main": _jitter_color(COLORS[main], rng), "second": _jitter_color(COLORS[second], rng)}
        # Texture contrast: a darker or lighter shade of the part's colour, or the second colour on main parts.
        self.shade = (0.0, 255.0, None)[rng.integers(3)]
        self.mix = rng.uniform(0.35, 0.6)
        self.named_seed = int(rng.integers(2**32))

    def color(self, role: str) -> np.ndarray:
        if role not in self.chosen:
            # Fixed colours get a jitter of their own, from a stream seeded by the role name,
            # so that it does not depend on which parts were drawn first.
            own = np.random.default_rng([self.named_seed, zlib.crc32(role.encode())])
            self.chosen[role] = _jitter_color(COLORS[self.iris if role == "iris" else role], own, amount=0.6)
        return self.chosen[role]

    def pattern(self, role: str) -> np.ndarray:
        """The texture's second colour on a part of colour `role`."""
        if self.shade is None and role == "main":
            return self.chosen["second"]
        shade = 0.0 if self.shade is None else self.shade
        return (1 - self.mix) * self.color(role) + np.float32(self.mix * shade)


@dataclass(frozen=True)
class Texture:
    kind: str  # solid, stripes, dots, checker, rings, waves, spots
    freq: float  # cycles per unit of the texture's coordinates
    angle: float  # radians
    phase: tuple[float, float]
    size: float  # stripe duty / dot radius, in cycles


def _sample_texture(kinds, rng, freq_range, angle=None) -> Texture:
    kind = kinds[rng.integers(len(kinds))]
    freq = rng.uniform(*freq_range)
    angle = rng.uniform(0, 2 * math.pi) if angle is None else angle
    return Texture(kind, freq, angle, (rng.random(), rng.random()), rng.uniform(0.3, 0.45))


def _pattern(tex: Texture, u: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """Where the texture takes its second colour, on coordinates (u, v); None for solid."""
    if tex.kind == "solid":
        return None
    c, s = math.cos(tex.angle), math.sin(tex.angle)
    a = (c * u + s * v) * tex.freq + tex.phase[0]
    b = (-s * u + c * v) * tex.freq + tex.phase[1]
    if tex.kind == "stripes":
        return a % 1.0 < tex.size
    if tex.kind == "waves":
        return (a + 0.3 * np.sin(2 * math.pi * 0.6 * b)) % 1.0 < tex.size
    if tex.kind == "checker":
        return (np.floor(a) + np.floor(b)) % 2 == 0
    if tex.kind == "rings":
        return (np.hypot(u, v) * tex.freq + tex.phase[0]) % 1.0 < tex.size
    if tex.kind == "dots":
        return (a % 1.0 - 0.5) ** 2 + (b % 1.0 - 0.5) ** 2 < (0.7 * tex.size) ** 2
    if tex.kind == "spots":  # irregular dots: each cell's dot moved and resized by a hash of the cell
        i, j = np.floor(a), np.floor(b)
        h = np.sin(i * 12.9898 + j * 78.233) * 43758.5453
        h1, h2 = h % 1.0, (h * 7.13) % 1.0
        dx, dy = a % 1.0 - 0.25 - 0.5 * h1, b % 1.0 - 0.25 - 0.5 * h2
        return dx * dx + dy * dy < (0.15 + 0.2 * h2) ** 2
    raise ValueError(tex.kind)


# ----------------------------------------------------------------------------- rasterising


class Pose(NamedTuple):
    rotation: float  # degrees, counter-clockwise on screen
    scale: float  # bounding-circle diameter / image side
    center: tuple[float, float]  # pixels (x, y)


def _to_pixels(points: np.ndarray, pose: Pose, size: int, ss: int = 1) -> np.ndarray:
    """Object frame -> continuous pixel coordinates of an image of side size * ss."""
    a = math.radians(pose.rotation)
    c, s = math.cos(a), math.sin(a)
    r = pose.scale * size * ss / 2
    x, y = points[:, 0], points[:, 1]
    return np.stack([pose.center[0] * ss + r * (c * x + s * y), pose.center[1] * ss + r * (c * y - s * x)], axis=1)


def _to_object(xs: np.ndarray, ys: np.ndarray, pose: Pose, size: int, ss: int):
    a = math.radians(pose.rotation)
    c, s = math.cos(a), math.sin(a)
    r = pose.scale * size * ss / 2
    dx, dy = (xs - pose.center[0] * ss) / r, (ys - pose.center[1] * ss) / r
    return c * dx - s * dy, s * dx + c * dy


@lru_cache(maxsize=8)
def _pixel_centers(side: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel centre of a side x side canvas (float32, read-only)."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) + np.float32(0.5)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _fill(points: np.ndarray, shape: tuple[int, int]):
    """Rasterise a polygon (continuous pixel coordinates) -> (region slices, boolean mask) or None."""
    h, w = shape
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    img = Image.new("L", (int(x1 - x0), int(y1 - y0)), 0)
    # PIL puts integer coordinates on pixel centres; ours are at +0.5.
    ImageDraw.Draw(img).polygon((points - (x0 + 0.5, y0 + 0.5)).ravel().tolist(), fill=255)
    return (slice(y0, y1), slice(x0, x1)), np.asarray(img) > 0


def _paint(rgb, alpha, points, color, pattern_fn=None, pattern_color=None) -> None:
    """Fill a polygon into rgb (and mark it in alpha), in `pattern_color` where pattern_fn says so."""
    hit = _fill(points, rgb.shape[:2])
    if hit is None:
        return
    region, inside = hit
    target = rgb[region]
    if pattern_fn is not None:
        xs, ys = _pixel_centers(rgb.shape[0])
        second = pattern_fn(xs[region], ys[region])
        if second is not None:
            target[inside] = np.where(second[inside][:, None], pattern_color, color)
        else:
            target[inside] = color
    else:
        target[inside] = color
    if alpha is not None:
        alpha[region][inside] = True


def _normalised(parts: list[Part], recenter: bool) -> list[Part]:
    """Scale (and for asymmetric objects centre) the parts so they fill the unit disc."""
    drawn = np.concatenate([p.points for p in parts if p.color not in (None, HOLE)])
    offset = (drawn.min(axis=0) + drawn.max(axis=0)) / 2 if recenter else np.zeros(2)
    radius = np.linalg.norm(drawn - offset, axis=1).max()
    return [replace(p, points=(p.points - offset) / radius) for p in parts]


# ----------------------------------------------------------------------------- one image


def _sample_pose(cls: ClassDef, rng, size: int, spec: SyntheticSpec, rotation, scale, center) -> Pose:
    u_rot, u_scale, u_x, u_y = rng.random(4)  # always drawn, so overrides leave the rest of the image alone
    if rotation is None:
        if cls.symmetry > 1 and spec.max_rotation > 0:
            rotation = u_rot * 360.0 / cls.symmetry
        else:
            rotation = (2 * u_rot - 1) * spec.max_rotation
    if scale is None:
        lo, hi = spec.scale_range
        scale = lo + (hi - lo) * u_scale
    if center is None:
        margin = min(scale * size / 2, size / 2)
        center = (margin + u_x * (size - 2 * margin), margin + u_y * (size - 2 * margin))
    return Pose(float(rotation), float(scale), (float(center[0]), float(center[1])))


def _draw_object(cls: ClassDef, rng, pose: Pose, size: int):
    """The object layer at supersampled resolution: rgb, alpha and the normalised parts."""
    parts = _normalised(cls.build(make_jitter(rng)), recenter=cls.symmetry == 1)
    palette = Palette(cls, rng)
    texture_angle = None if cls.symmetry > 1 else math.radians(rng.uniform(-20, 20))
    texture = _sample_texture(cls.textures, rng, (2.5, 4.5), texture_angle)
    S = size * SUPERSAMPLE
    rgb = np.zeros((S, S, 3), np.float32)
    alpha = np.zeros((S, S), bool)

    def object_pattern(xs, ys):
        return _pattern(texture, *_to_object(xs, ys, pose, size, SUPERSAMPLE))

    for part in parts:
        if part.color is None:
            continue
        points = _to_pixels(part.points, pose, size, SUPERSAMPLE)
        if part.color == HOLE:
            hit = _fill(points, alpha.shape)
            if hit is not None:
                alpha[hit[0]][hit[1]] = False
            continue
        _paint(rgb, alpha, points, palette.color(part.color),
               object_pattern if part.textured else None, palette.pattern(part.color))
    return rgb, alpha, parts


DISTRACTOR_COLORS = tuple(c for c in COLORS if c not in ("dark", "light"))


def _distractor_shape(rng) -> np.ndarray:
    kind = rng.integers(6)
    if kind == 0:
        return circle(0, 0, 1.0)
    if kind == 1:
        return ellipse(0, 0, 1.0, rng.uniform(0.3, 0.7))
    if kind == 2:
        return rect(0, 0, 1.4, rng.uniform(0.3, 1.2))
    if kind == 3:
        return regular(0, 0, 1.0, 3) * (1, rng.uniform(0.6, 1.3))
    if kind == 4:
        return regular(0, 0, 1.0, int(rng.integers(5, 9)))
    t = np.linspace(0, 2 * math.pi, 9, endpoint=False)
    r = rng.uniform(0.5, 1.0, size=9)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _draw_background(rng, size: int, n_distractors: int, object_alpha: np.ndarray) -> tuple[np.ndarray, int]:
    """Smooth colour field + a faint texture + distractor shapes kept mostly off the object."""
    S = size * SUPERSAMPLE
    base = COLORS[DISTRACTOR_COLORS[rng.integers(len(DISTRACTOR_COLORS))]]
    grid = np.stack([_jitter_color(base, rng, amount=2.5) for _ in range(9)]).reshape(3, 3, 3)
    grey = grid.mean(axis=2, keepdims=True)
    grid = grey + rng.uniform(0.2, 0.7) * (grid - grey)  # backgrounds are less saturated than objects
    field = Image.fromarray(grid.clip(0, 255).astype(np.uint8)).resize((S, S), Image.Resampling.BICUBIC)
    rgb = np.asarray(field).astype(np.float32)

    texture = _sample_texture(("stripes", "checker", "dots", "waves", "spots", "rings", "solid"), rng, (3, 10))
    xs, ys = _pixel_centers(S)
    pattern = _pattern(texture, xs / S, ys / S)
    if pattern is not None:
        shade = 255.0 if rng.random() < 0.5 else 0.0
        strength = rng.uniform(0.08, 0.3)
        rgb += pattern[..., None] * (strength * (shade - rgb))

    placed = 0
    for _ in range(n_distractors):
        for _attempt in range(4):
            pose = Pose(rng.uniform(0, 360), rng.uniform(0.12, 0.3), tuple(rng.uniform(0, size, 2)))
            shape = _distractor_shape(rng)
            color = _jitter_color(COLORS[DISTRACTOR_COLORS[rng.integers(len(DISTRACTOR_COLORS))]], rng)
            tex = _sample_texture(("solid", "stripes", "dots", "checker", "spots"), rng, (2, 4))
            points = _to_pixels(shape, pose, size, SUPERSAMPLE)
            hit = _fill(points, (S, S))
            if hit is None or object_alpha[hit[0]][hit[1]].sum() > 0.2 * hit[1].sum():
                continue  # drawn behind the object, but should not hide under it

            def pattern_fn(px, py, pose=pose, tex=tex):
                return _pattern(tex, *_to_object(px, py, pose, size, SUPERSAMPLE))

            _paint(rgb, None, points, color, pattern_fn, 0.55 * color)
            placed += 1
            break
    return rgb, placed


def _downsample(a: np.ndarray) -> np.ndarray:
    """Average SUPERSAMPLE x SUPERSAMPLE blocks (slicing is much faster than a reshaped mean)."""
    f = SUPERSAMPLE
    return sum(a[i::f, j::f] for i in range(f) for j in range(f)) / np.float32(f * f)


def render(class_name: str, rng: np.random.Generator, size: int, *, rotation: float | None = None,
           scale: float | None = None, center: tuple[float, float] | None = None, background: bool = True,
           distractors: int | None = None, spec: SyntheticSpec | None = None) -> tuple[Image.Image, dict]:
    """Render one RGB image of `class_name` and its ground truth.

    rotation (degrees counter-clockwise), scale (bounding-circle diameter / image side) and center
    (pixels) override the random pose; everything else (shape, colours, texture, background) comes
    from `rng` alone, so the same seed with another pose gives the same object moved. distractors:
    exactly this many distractor shapes (None: 0..spec.distractors with a background, 0 without).
    background=False renders on flat grey without noise. Distractors avoid the object, so with a
    background and distractors their positions may change with the pose. `rng` is used up (its
    seed sequence is spawned from): pass a fresh np.random.default_rng(seed) to redraw an object.

    Returns (image, meta): meta has "class", "box" [x0, y0, x1, y1] (pixels, x1/y1 exclusive; None
    if the object is out of view), "mask" (bool array, size x size), "keypoints" {part: [x, y]}
    (centres of the named parts, which may lie outside the image), "part_boxes" {part: [x0, y0,
    x1, y1]} (float), "rotation", "scale", "center" and "distractors".
    """
    spec = spec or SyntheticSpec()
    cls = _class_def(class_name)
    _check_size(size)
    object_rng, scene_rng = rng.spawn(2)
    pose = _sample_pose(cls, object_rng, size, spec, rotation, scale, center)
    obj_rgb, obj_alpha, parts = _draw_object(cls, object_rng, pose, size)

    S = size * SUPERSAMPLE
    if background:
        n = int(scene_rng.integers(spec.distractors + 1)) if distractors is None else int(distractors)
        bg, placed = _draw_background(scene_rng, size, n, obj_alpha)
    else:
        bg, placed = np.full((S, S, 3), 127.0, np.float32), 0
    composite = np.where(obj_alpha[..., None], obj_rgb, bg)
    image = _downsample(composite)
    mask = _downsample(obj_alpha.astype(np.float32)) >= 0.5
    if background:
        image = _lighting_and_noise(image, scene_rng)
    return _to_pil(image), {"class": class_name, "box": _box(mask), "mask": mask, **_keypoints(parts, pose, size),
                 "rotation": pose.rotation, "scale": pose.scale, "center": list(pose.center), "distractors": placed}


def render_clutter(rng: np.random.Generator, size: int, spec: SyntheticSpec | None = None, *,
                   distractors: int | None = None) -> tuple[Image.Image, dict]:
    """A clutter image (Caltech-101's BACKGROUND_Google, Caltech-256's clutter): the background and
    distractor shapes of `render`, with the same statistics, and no object. distractors: exactly this
    many (None: 0..spec.distractors). Returns (image, {"distractors": shapes placed})."""
    spec = spec or SyntheticSpec()
    _check_size(size)
    n = int(rng.integers(spec.distractors + 1)) if distractors is None else int(distractors)
    S = size * SUPERSAMPLE
    bg, placed = _draw_background(rng, size, n, np.zeros((S, S), bool))
    return _to_pil(_lighting_and_noise(_downsample(bg), rng)), {"distractors": placed}


SCENE_ATTEMPTS = 6  # centres tried per scene object
SCENE_OVERLAP = 0.3  # how far a bounding circle may reach into an earlier one, as a fraction of the smaller radius


def _scene_pose(cls: ClassDef, rng, size: int, spec: SyntheticSpec, taken: list, override) -> Pose:
    """A pose for a scene object: scale from spec.voc_scale_range, the centre anywhere that keeps at
    least half the bounding circle's radius in view, tried a few times to stay off the `taken` circles."""
    rotation, scale, center = override if override is not None else (None, None, None)
    scene_spec = replace(spec, scale_range=tuple(spec.voc_scale_range))
    pose = _sample_pose(cls, rng, size, scene_spec, rotation, scale, (0.0, 0.0) if center is None else center)
    r = pose.scale * size / 2
    best = (math.inf, pose.center)
    for _ in range(SCENE_ATTEMPTS if center is None else 0):
        xy = tuple(float(v) for v in r / 2 + rng.random(2) * (size - r))
        overlap = max(((r + tr - math.dist(xy, tc)) / min(r, tr) for tc, tr in taken), default=-math.inf)
        best = min(best, (overlap, xy))
        if overlap <= SCENE_OVERLAP:
            break
    return pose._replace(center=best[1])


def render_scene(class_names, rng: np.random.Generator, size: int, spec: SyntheticSpec | None = None, *,
                 poses=None, distractors: int | None = None) -> tuple[Image.Image, dict]:
    """A scene of several objects (a VOC image): one object per entry of `class_names`, drawn in that
    order (later objects occlude earlier ones), over one background, with lighting and noise as `render`.

    poses: None, or per object None or (rotation, scale, center) with None entries drawn at random
    (scale from spec.voc_scale_range). distractors as in `render`. Returns (image, meta): meta has
    "objects", one dict per object with visible pixels (an object hidden by later ones is left out):
    "class", "box" [x0, y0, x1, y1] of its visible mask (pixels, x1/y1 exclusive), "mask" (visible,
    bool size x size), "difficult" (1 if under half of its unoccluded area is visible), "truncated"
    (1 if its bounding circle crosses the image border), "rotation", "scale", "center"; and "distractors".
    """
    spec = spec or SyntheticSpec()
    classes = [_class_def(name) for name in class_names]
    _check_size(size)
    poses = [None] * len(classes) if poses is None else list(poses)
    if not classes or len(poses) != len(classes):
        raise UserError(f"render_scene: {len(classes)} classes and {len(poses)} poses; expected as many, >= 1")
    *object_rngs, scene_rng = rng.spawn(len(classes) + 1)
    S = size * SUPERSAMPLE
    rgb = np.zeros((S, S, 3), np.float32)
    owner = np.full((S, S), -1, np.int16)  # which object is on top at each (supersampled) pixel
    taken, drawn = [], []
    for k, (cls, object_rng, override) in enumerate(zip(classes, object_rngs, poses)):
        pose = _scene_pose(cls, object_rng, size, spec, taken, override)
        obj_rgb, obj_alpha, _ = _draw_object(cls, object_rng, pose, size)
        rgb[obj_alpha] = obj_rgb[obj_alpha]
        owner[obj_alpha] = k
        taken.append((pose.center, pose.scale * size / 2))
        drawn.append((pose, _downsample(obj_alpha.astype(np.float32)) >= 0.5))
    union = owner >= 0
    n = int(scene_rng.integers(spec.distractors + 1)) if distractors is None else int(distractors)
    bg, placed = _draw_background(scene_rng, size, n, union)
    image = _lighting_and_noise(_downsample(np.where(union[..., None], rgb, bg)), scene_rng)
    objects = []
    for k, (name, (pose, full)) in enumerate(zip(class_names, drawn)):
        visible = _downsample((owner == k).astype(np.float32)) >= 0.5
        if not visible.any():
            continue
        (cx, cy), r = pose.center, pose.scale * size / 2
        objects.append({"class": name, "box": _box(visible), "mask": visible,
                        "difficult": int(visible.sum() < 0.5 * full.sum()),
                        "truncated": int(min(cx, cy) - r < 0 or max(cx, cy) + r > size),
                        "rotation": pose.rotation, "scale": pose.scale, "center": list(pose.center)})
    return _to_pil(image), {"objects": objects, "distractors": placed}


def render_frontal_face(class_name: str, rng: np.random.Generator, size: int, **kwargs) -> tuple[Image.Image, dict]:
    """A face class at rotation 0 (eyes level, left_eye on the image's right), for correspondence."""
    if _class_def(class_name).family != "face":
        raise UserError(f"{class_name!r} is not a face class; faces: "
                        + ", ".join(n for n in CLASS_ORDER if CLASSES[n].family == "face"))
    return render(class_name, rng, size, rotation=0.0, **kwargs)


def _check_size(size) -> None:
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise UserError(f"render size={size!r}: expected an integer >= 8 (pixels)")


def _to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))


def _lighting_and_noise(image: np.ndarray, rng) -> np.ndarray:
    size = image.shape[0]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.arange(size) + 0.5) / size - 0.5
    gradient = math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None]
    light = (1 + rng.uniform(0, 0.35) * gradient).astype(np.float32)
    noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1, 5))
    return image * light[..., None] + noise


def _box(mask: np.ndarray) -> list[int] | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def _keypoints(parts: list[Part], pose: Pose, size: int) -> dict:
    keypoints, boxes = {}, {}
    for part in parts:
        if part.name:
            points = _to_pixels(part.points, pose, size)
            keypoints[part.name] = [round(float(v), 2) for v in points.mean(axis=0)]
            boxes[part.name] = [round(float(v), 2) for v in (*points.min(axis=0), *points.max(axis=0))]
    return {"keypoints": keypoints, "part_boxes": boxes}

