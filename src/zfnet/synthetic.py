"""The built-in procedurally generated dataset: cartoon objects made of parts, on cluttered backgrounds.

It stands in for ImageNet (pretraining) and for Caltech-101/256 (transfer to unseen classes) so the
whole pipeline runs offline on a laptop CPU. Every class is a composite object: parts with a
class-specific layout and shape, colours drawn from palettes shared with other classes, and textures
(stripes, dots, checker, ...) shared too, so that shape and layout, not mean colour, tell classes apart.

Families:
- "face": animal faces (dog, cat, owl, ...) with two eyes and a nose, plus ears, muzzle, whiskers;
- "radial": rotationally symmetric objects (wheel, flower, gear, ...), n-fold symmetric;
- "object": asymmetric objects (house, car, arrow, fish, ...).

Geometry. Each class is built in an object frame (x right, y down, the object inside the unit disc)
as a list of polygons, then placed with a similarity transform: `scale` is the diameter of the
object's bounding circle as a fraction of the image side, `rotation` is in degrees counter-clockwise
on screen (as PIL's Image.rotate), `center` is in pixels. Pixel coordinates are continuous: pixel
(row i, column j) covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5).

Keypoints. Named parts give keypoints (the centre of the part) and part boxes. Face keypoints follow
the subject's point of view, as the paper does: `left_eye` is the subject's left eye, which appears
on the image's RIGHT (larger x) in a frontal, unrotated face; `right_eye` appears on the image's left.

On disk (`generate`), under out_dir:
    classes.json                                             catalog + the spec that made it
    imagenet/train/<class>/<class>_00001.JPEG                pretraining classes (ImageNet-2012 layout)
    imagenet/val/<class>/<class>_00001.JPEG
    imagenet/masks/{train,val}/<class>/<class>_00001.png     object masks (1-bit PNG)
    imagenet/metadata.jsonl                                  one line per image, paths relative to imagenet/
    caltech101/101_ObjectCategories/<class>/image_0001.jpg   transfer classes (torchvision layout)
    caltech101/masks/<class>/image_0001.png
    caltech101/metadata.jsonl
    caltech256/256_ObjectCategories/001.<class>/001_0001.jpg
    caltech256/masks/001.<class>/001_0001.png
    caltech256/metadata.jsonl
A metadata line holds: path, mask, split ("train"/"val"; "all" for Caltech), class, label (index
of the class folder in sorted order, as ImageFolder numbers them), box [x0, y0, x1, y1] (pixels,
x1/y1 exclusive), keypoints and part_boxes (pixels), rotation, scale, center and distractors.
Masks live outside the class folders so ImageFolder-style loaders never see them. Each image is
rendered from its own SeedSequence(seed, dataset, split, class, index): the files do not depend on
worker count or order, and the same spec gives byte-identical files (on the same platform).
"""

from __future__ import annotations

import colorsys
import contextlib
import json
import math
import multiprocessing
import os
import time
import zlib
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from zfnet.errors import UserError
from zfnet.io import atomic_path


@dataclass(frozen=True)
class SyntheticSpec:
    """What `generate` writes. Pretraining classes are the first `num_classes` of the catalog order,
    transfer classes are taken from its other end, so both lists are stable as the counts change.
    Caltech-101 classes are the first `caltech101_classes` transfer classes, Caltech-256 the first
    `caltech256_classes` (they overlap, as the real datasets do); 0 skips that dataset.

    Rotation: asymmetric classes turn uniformly in [-max_rotation, +max_rotation]; rotationally
    symmetric classes get a uniform phase over their symmetry angle (a wheel's spokes are at any
    angle), which is the same as any rotation at all for them (unless max_rotation is 0).
    """

    num_classes: int = 10  # pretraining classes
    train_per_class: int = 300
    val_per_class: int = 50
    caltech101_classes: int = 10
    caltech256_classes: int = 12
    transfer_per_class: int = 60  # images per transfer class
    image_size: int = 112  # side of the generated square images (px)
    max_rotation: float = 20.0  # degrees, +- uniform
    scale_range: tuple[float, float] = (0.55, 0.9)  # object size as a fraction of image side
    distractors: int = 3  # max distractor shapes
    jpeg_quality: int = 90
    seed: int = 0


SUPERSAMPLE = 2  # draw at 2x and average down: anti-aliased edges for little cost
CIRCLE_VERTICES = 48
FACE_KEYPOINTS = ("left_eye", "right_eye", "nose")
HOLE = "hole"  # a part with this colour cuts the object (background shows through)


# ----------------------------------------------------------------------------- geometry (object frame)


def _turn(points: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the origin; with y pointing down a positive angle turns clockwise on screen."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return points @ np.array([[c, s], [-s, c]])


def poly(*xy: float) -> np.ndarray:
    return np.asarray(xy, dtype=np.float64).reshape(-1, 2)


def ellipse(cx, cy, rx, ry, angle=0.0, n=CIRCLE_VERTICES) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return _turn(np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1), angle) + (cx, cy)


def circle(cx, cy, r, n=CIRCLE_VERTICES) -> np.ndarray:
    return ellipse(cx, cy, r, r, n=n)


def rect(cx, cy, w, h, angle=0.0) -> np.ndarray:
    return _turn(poly(-w / 2, -h / 2, w / 2, -h / 2, w / 2, h / 2, -w / 2, h / 2), angle) + (cx, cy)


def bar(x0, y0, x1, y1, width) -> np.ndarray:
    """A straight stroke of the given width from (x0, y0) to (x1, y1)."""
    length = math.hypot(x1 - x0, y1 - y0)
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    return rect((x0 + x1) / 2, (y0 + y1) / 2, length, width, angle)


def arc(cx, cy, r_out, r_in, start, end, n=24) -> np.ndarray:
    """An annular sector from `start` to `end` degrees (0 = +x, 90 = down)."""
    t = np.radians(np.linspace(start, end, n))
    outer = np.stack([r_out * np.cos(t), r_out * np.sin(t)], axis=1)
    inner = np.stack([r_in * np.cos(t), r_in * np.sin(t)], axis=1)[::-1]
    return np.concatenate([outer, inner]) + (cx, cy)


def star(cx, cy, r_out, r_in, n, angle=-90.0) -> np.ndarray:
    t = np.radians(angle + np.arange(2 * n) * 180.0 / n)
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def regular(cx, cy, r, n, angle=-90.0) -> np.ndarray:
    t = np.radians(angle + np.arange(n) * 360.0 / n)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def mirror(points: np.ndarray) -> np.ndarray:
    return points * (-1.0, 1.0)


# ----------------------------------------------------------------------------- parts and classes


@dataclass(frozen=True)
class Part:
    points: np.ndarray  # (N, 2) object-frame vertices
    color: str | None  # colour role ("main", "second", "iris") or a COLORS name; HOLE cuts; None: not drawn
    name: str = ""  # named parts give keypoints and part boxes
    textured: bool = False  # painted with the image's texture


def P(points, color, name="", textured=False) -> Part:
    return Part(points, color, name, textured)


def pair(points, color, name="", textured=False) -> list[Part]:
    """A part given on the image's left (the subject's right) and its mirror image."""
    return [P(points, color, name and f"right_{name}", textured),
            P(mirror(points), color, name and f"left_{name}", textured)]


Jitter = Callable[..., float]  # jit(value, spread=0.1) -> value * U(1 - spread, 1 + spread)


@dataclass(frozen=True)
class ClassDef:
    name: str
    family: str  # "face", "radial" or "object"
    build: Callable[[Jitter], list[Part]]
    colors: tuple[str, ...]  # choices for the "main" colour
    seconds: tuple[str, ...]  # choices for the "second" colour
    textures: tuple[str, ...] = ("solid",)
    symmetry: int = 1  # n-fold rotational symmetry of the shape (1: none)


COLORS = {
    "red": (200, 45, 40), "orange": (235, 135, 35), "yellow": (235, 205, 50), "lime": (150, 200, 60),
    "green": (55, 140, 65), "teal": (35, 140, 140), "sky": (100, 175, 230), "blue": (45, 85, 190),
    "navy": (35, 45, 105), "purple": (125, 65, 165), "pink": (235, 155, 175), "magenta": (190, 55, 140),
    "brown": (125, 75, 40), "tan": (205, 165, 115), "cream": (240, 225, 190), "grey": (130, 130, 135),
    "silver": (190, 195, 200), "olive": (120, 120, 45), "maroon": (115, 35, 45),
    "dark": (35, 30, 30), "light": (240, 238, 230),
}
IRIS_COLORS = ("green", "yellow", "orange", "sky", "brown")


# --- faces. Built for the image's left side (x < 0, the subject's right) and mirrored.


def _eye(x, y, r, style) -> list[Part]:
    """One eye at (x, y); the first part is the named one (its centre is the keypoint)."""
    if style == "dot":
        return [P(circle(x, y, r), "dark", "eye"), P(circle(x + 0.3 * r, y - 0.3 * r, 0.3 * r), "light")]
    if style == "ring":
        return [P(circle(x, y, r), "light", "eye"), P(circle(x, y, 0.55 * r), "dark")]
    if style == "slit":
        return [P(ellipse(x, y, r, 0.75 * r), "iris", "eye"), P(ellipse(x, y, 0.18 * r, 0.65 * r), "dark")]
    if style == "owl":
        return [P(circle(x, y, r), "iris", "eye"), P(circle(x, y, 0.55 * r), "dark"),
                P(circle(x + 0.25 * r, y - 0.25 * r, 0.15 * r), "light")]
    if style == "frog":
        return [P(circle(x, y, r), "light", "eye"), P(ellipse(x, y, 0.7 * r, 0.35 * r), "dark")]
    raise ValueError(style)


def eyes(jit, dx, y, r, style="dot") -> list[Part]:
    x, y, r = -jit(dx, 0.08), jit(y, 0.15), jit(r, 0.15)
    right = _eye(x, y, r, style)
    left = [replace(p, points=mirror(p.points)) for p in right]
    return ([replace(right[0], name="right_eye")] + right[1:] + [replace(left[0], name="left_eye")] + left[1:])


def whiskers(jit, x, y, color="dark") -> list[Part]:
    length, w = jit(0.45), 0.018
    strokes = [bar(-x, y + dy, -x - length, y + dy + 1.6 * dy - 0.04, w) for dy in (-0.06, 0.0, 0.06)]
    return [part for s in strokes for part in pair(s, color)]


def dog_face(jit):
    ear = ellipse(-jit(0.55), -0.1, jit(0.2), jit(0.45), angle=jit(20, 0.3))
    return [*pair(ear, "second", "ear"),
            P(ellipse(0, 0, jit(0.55), jit(0.62)), "main", "head", textured=True),
            P(ellipse(0, jit(0.3), jit(0.3), jit(0.22)), "light", "muzzle"),
            *eyes(jit, 0.22, -0.15, 0.08),
            P(ellipse(0, jit(0.2), jit(0.11), jit(0.08)), "dark", "nose"),
            P(arc(0, 0.32, 0.13, 0.1, 30, 150), "dark")]


def cat_face(jit):
    top = -jit(0.9, 0.06)
    ear = poly(-0.62, -0.2, -jit(0.5), top, -0.15, -0.42)
    inner = poly(-0.52, -0.27, -0.47, top + 0.18, -0.26, -0.42)
    return [*pair(ear, "main", "ear", textured=True), *pair(inner, "pink"),
            P(ellipse(0, 0, jit(0.62), jit(0.5)), "main", "head", textured=True),
            *eyes(jit, 0.25, -0.08, 0.11, "slit"),
            P(poly(-0.08, 0.1, 0.08, 0.1, 0, 0.2), "pink", "nose"),
            *whiskers(jit, 0.12, 0.2)]


def owl_face(jit):
    tuft = poly(-0.58, -0.3, -jit(0.65), -jit(0.95, 0.04), -0.3, -0.45)
    return [*pair(tuft, "main", "ear", textured=True),
            P(ellipse(0, 0, jit(0.68), jit(0.6)), "main", "head", textured=True),
            *pair(circle(-0.26, -0.06, jit(0.27)), "cream"),
            *eyes(jit, 0.26, -0.06, 0.16, "owl"),
            P(poly(-0.08, 0.12, 0.08, 0.12, 0, jit(0.34)), "orange", "nose")]


def bear_face(jit):
    ear_x, ear_y, ear_r = jit(0.45), -jit(0.45), jit(0.2)
    return [*pair(circle(-ear_x, ear_y, ear_r), "main", "ear", textured=True),
            *pair(circle(-ear_x, ear_y, 0.5 * ear_r), "second"),
            P(circle(0, 0, jit(0.6)), "main", "head", textured=True),
            P(ellipse(0, jit(0.25), jit(0.27), jit(0.2)), "light", "muzzle"),
            *eyes(jit, 0.22, -0.1, 0.07),
            P(ellipse(0, jit(0.15), jit(0.1), jit(0.07)), "dark", "nose")]


def fox_face(jit):
    chin = jit(0.62, 0.06)
    ear = poly(-0.62, -0.25, -jit(0.55), -jit(0.95, 0.04), -0.18, -0.45)
    head = poly(-0.72, -0.35, -0.35, -0.5, 0.35, -0.5, 0.72, -0.35, 0.45, 0.12, 0, chin, -0.45, 0.12)
    cheek = poly(-0.66, -0.22, -0.12, 0.2, 0, chin, -0.42, 0.14)
    return [*pair(ear, "main", "ear", textured=True), *pair(ear * 0.6 + (-0.2, -0.2), "dark"),
            P(head, "main", "head", textured=True), *pair(cheek, "light"),
            *eyes(jit, 0.26, -0.2, 0.08, "slit"),
            P(circle(0, chin - 0.06, jit(0.07)), "dark", "nose")]


def rabbit_face(jit):
    ear = ellipse(-jit(0.2), -jit(0.55, 0.05), jit(0.13), jit(0.42), angle=-jit(8, 0.5))
    inner = ear * (0.55, 0.8) + (-0.09, -0.1)
    return [*pair(ear, "main", "ear", textured=True), *pair(inner, "pink"),
            P(ellipse(0, 0.25, jit(0.5), jit(0.44)), "main", "head", textured=True),
            *eyes(jit, 0.2, 0.1, 0.08),
            P(poly(-0.06, 0.3, 0.06, 0.3, 0, 0.38), "pink", "nose"),
            P(rect(0, 0.47, 0.1, jit(0.1)), "light")]


def mouse_face(jit):
    ear_x, ear_r = jit(0.45), jit(0.33)
    return [*pair(circle(-ear_x, -0.35, ear_r), "main", "ear", textured=True),
            *pair(circle(-ear_x, -0.35, 0.65 * ear_r), "pink"),
            P(ellipse(0, 0.15, jit(0.45), jit(0.45)), "main", "head", textured=True),
            *eyes(jit, 0.17, 0.05, 0.07),
            P(circle(0, jit(0.45), 0.07), "pink", "nose"),
            *whiskers(jit, 0.08, 0.42)]


def pig_face(jit):
    ear = poly(-0.55, -0.35, -jit(0.7), -jit(0.8), -0.2, -0.52)
    snout_y = jit(0.2)
    return [*pair(ear, "main", "ear", textured=True),
            P(circle(0, 0, jit(0.6)), "main", "head", textured=True),
            *eyes(jit, 0.22, -0.17, 0.06),
            P(ellipse(0, snout_y, jit(0.24), jit(0.16)), "pink", "nose"),
            *pair(ellipse(-0.08, snout_y, 0.035, 0.065), "dark")]


def frog_face(jit):
    eye_x, eye_y, bulge = jit(0.4), -jit(0.33), jit(0.22)
    return [*pair(circle(-eye_x, eye_y, bulge), "main", "ear", textured=True),
            P(ellipse(0, 0.1, jit(0.75), jit(0.45)), "main", "head", textured=True),
            *eyes(jit, eye_x, eye_y, 0.7 * bulge, "frog"),
            P(rect(0, -0.02, 0.2, 0.06), None, "nose"),
            *pair(circle(-0.07, -0.02, 0.03), "dark"),
            P(arc(0, 0.05, 0.5, 0.47, 35, 145), "dark")]


def panda_face(jit):
    ear_x, ear_r = jit(0.45), jit(0.2)
    patch = ellipse(-jit(0.24), -0.05, jit(0.14), jit(0.19), angle=35)
    return [*pair(circle(-ear_x, -0.45, ear_r), "second", "ear"),
            P(circle(0, 0, jit(0.6)), "main", "head", textured=True),
            *pair(patch, "second"),
            *eyes(jit, 0.24, -0.07, 0.07, "ring"),
            P(ellipse(0, jit(0.2), jit(0.09), jit(0.06)), "dark", "nose"),
            P(arc(0, 0.27, 0.12, 0.09, 30, 150), "dark")]


def lion_face(jit):
    mane = star(0, 0.1, 0.9, jit(0.72, 0.05), 16) * (jit(0.85, 0.05), 1.0)
    return [*pair(circle(-jit(0.42), -0.72, jit(0.15)), "main", "ear"),
            P(mane, "second", "mane", textured=True),
            P(circle(0, 0.05, jit(0.55, 0.05)), "main", "head"),
            P(ellipse(0, jit(0.3), jit(0.26), jit(0.18)), "light", "muzzle"),
            *eyes(jit, 0.2, -0.07, 0.07, "slit"),
            P(poly(-0.09, 0.16, 0.09, 0.16, 0, 0.26), "dark", "nose")]


def monkey_face(jit):
    ear_x, ear_r = jit(0.62), jit(0.18)
    tuft = poly(-0.25, -0.5, -0.1, -jit(0.78), 0.0, -0.6, 0.12, -jit(0.75), 0.25, -0.5)
    return [*pair(circle(-ear_x, 0.05, ear_r), "main", "ear", textured=True),
            *pair(circle(-ear_x, 0.05, 0.55 * ear_r), "tan"),
            P(tuft, "main", "tuft", textured=True),
            P(circle(0, 0, jit(0.58)), "main", "head", textured=True),
            *pair(circle(-0.18, -0.1, jit(0.2)), "tan"),
            P(ellipse(0, 0.25, jit(0.32), jit(0.26)), "tan", "muzzle"),
            *eyes(jit, 0.18, -0.1, 0.07),
            P(ellipse(0, jit(0.15), 0.08, 0.04), None, "nose"),
            *pair(circle(-0.04, 0.15, 0.025), "dark"),
            P(arc(0, 0.25, 0.16, 0.12, 30, 150), "dark")]


# --- rotationally symmetric objects, built around the origin (n-fold symmetry with n = `symmetry`).


def _around(n: int, points: np.ndarray, color: str, textured=False) -> list[Part]:
    return [P(_turn(points, k * 360.0 / n), color, textured=textured) for k in range(n)]


def wheel(jit, n=6):
    hole = jit(0.7, 0.05)
    return [P(circle(0, 0, 1.0), "dark", "tyre"), P(circle(0, 0, hole + 0.12), "main", textured=True),
            P(circle(0, 0, hole), HOLE), *_around(n, bar(0, 0, hole + 0.05, 0, jit(0.09)), "main", True),
            P(circle(0, 0, jit(0.2)), "second", "hub")]


def ship_wheel(jit, n=8):
    ring = jit(0.68, 0.05)
    knob = circle(0.92, 0, jit(0.08))
    return [P(circle(0, 0, ring), "main", textured=True), P(circle(0, 0, ring - 0.12), HOLE),
            *_around(n, bar(0, 0, 0.9, 0, jit(0.07)), "main", True), *_around(n, knob, "main", True),
            P(circle(0, 0, jit(0.16)), "second", "hub")]


def flower(jit, n=5, petal=(0.5, 0.3), center=0.28):
    length, width = jit(petal[0]), jit(petal[1])
    return [*_around(n, ellipse(0.95 - length, 0, length, width), "main", True),
            P(circle(0, 0, jit(center)), "second", "center")]


def star_shape(jit, n=5):
    return [P(star(0, 0, 1.0, jit(0.45), n), "main", textured=True),
            P(regular(0, 0, jit(0.2), n, angle=90), "second", "center")]


def gear(jit, n=10):
    body = jit(0.78, 0.04)
    tooth = rect(body + 0.08, 0, 0.22, jit(0.2))
    return [P(circle(0, 0, body), "main", textured=True), *_around(n, tooth, "main", True),
            P(circle(0, 0, jit(0.25)), HOLE, "axle")]


def sun(jit, n=12):
    disc = jit(0.58, 0.05)
    half = math.radians(jit(9)) * disc
    return [*_around(n, poly(disc - 0.05, -half, 1.0, 0, disc - 0.05, half), "second"),
            P(circle(0, 0, disc), "main", "disc", textured=True)]


def snowflake(jit, n=6):
    width, fork = jit(0.09), jit(0.55)
    branch = [bar(fork, 0, fork + 0.3 * math.cos(a), 0.3 * math.sin(a), 0.07) for a in (0.8, -0.8)]
    return [*_around(n, bar(0, 0, 1.0, 0, width), "main", True),
            *(part for b in branch for part in _around(n, b, "main", True)),
            P(regular(0, 0, jit(0.22), 6), "second", "center")]


def pinwheel(jit, n=4):
    blade = poly(0, 0, 1.0, 0, 0.55 * math.cos(1.0), -0.55 * math.sin(1.0)) * jit(1.0, 0.03)
    return [*_around(n, blade, "main", True), P(circle(0, 0, jit(0.09)), "second", "pin")]


def nut(jit, n=6):
    return [P(regular(0, 0, 1.0, n, angle=0), "main", textured=True),
            P(circle(0, 0, jit(0.45)), HOLE, "hole")]


def starfish(jit, n=5):
    t = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    inner = jit(0.3)
    r = inner + (1 - inner) * np.abs(np.cos(n * (t + math.pi / 2) / 2)) ** 3
    return [P(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), "main", textured=True),
            P(circle(0, 0, jit(0.15)), "second", "center")]


def clover(jit, n=4):
    return [*_around(n, circle(jit(0.52), 0, jit(0.45, 0.05)), "main", True),
            P(circle(0, 0, jit(0.22)), "second", "center")]


def propeller(jit, n=3):
    return [*_around(n, ellipse(0.5, 0.06, 0.48, jit(0.16), angle=12), "main", True),
            P(circle(0, 0, jit(0.2)), "second", "hub")]


def lifebuoy(jit, n=4):
    hole = jit(0.55, 0.06)
    return [P(circle(0, 0, 1.0), "main", textured=True),
            *_around(n, arc(0, 0, 1.0, hole, -20, 20), "second"),
            P(circle(0, 0, hole), HOLE, "hole")]


# --- asymmetric objects (re-centred on their bounding box).


def house(jit):
    roof = -jit(0.75, 0.06)
    return [P(rect(0.32, -0.55, 0.15, 0.4), "second", "chimney"),
            P(rect(0, 0.25, jit(1.1, 0.05), 0.9), "main", "wall", textured=True),
            P(poly(-0.72, -0.2, 0.72, -0.2, 0, roof), "second", "roof"),
            P(rect(-0.22, 0.5, 0.26, jit(0.4)), "brown", "door"),
            P(rect(0.24, 0.15, jit(0.3), jit(0.26)), "sky", "window"),
            P(bar(0.24, 0.02, 0.24, 0.28, 0.03), "light"), P(bar(0.09, 0.15, 0.39, 0.15, 0.03), "light")]


def car(jit):
    wheel_r, axle = jit(0.22, 0.06), 0.32
    cabin = poly(-0.55, -0.04, -0.35, -jit(0.45), 0.28, -0.45, 0.5, -0.04)
    parts = [P(cabin, "main", textured=True),
             P(poly(-0.44, -0.08, -0.3, -0.36, -0.08, -0.36, -0.08, -0.08), "sky", "rear_window"),
             P(poly(0.0, -0.08, 0.0, -0.36, 0.24, -0.36, 0.38, -0.08), "sky", "front_window"),
             P(rect(0, 0.13, jit(1.9, 0.04), 0.36), "main", "body", textured=True),
             P(rect(0.9, 0.05, 0.1, 0.08), "yellow", "headlight")]
    for name, x in (("rear_wheel", -0.55), ("front_wheel", 0.55)):
        parts += [P(circle(x, axle, wheel_r), "dark", name), P(circle(x, axle, 0.45 * wheel_r), "silver")]
    return parts


def truck(jit):
    wheel_r = jit(0.17, 0.06)
    parts = [P(rect(-0.3, -0.08, jit(1.2, 0.05), jit(0.78)), "main", "cargo", textured=True),
             P(poly(0.3, -0.3, 0.65, -0.3, 0.85, -0.05, 0.85, 0.3, 0.3, 0.3), "second", "cab"),
             P(poly(0.42, -0.24, 0.62, -0.24, 0.76, -0.06, 0.42, -0.06), "sky", "window")]
    for name, x in (("rear_wheel", -0.6), ("middle_wheel", -0.22), ("front_wheel", 0.6)):
        parts += [P(circle(x, 0.35, wheel_r), "dark", name), P(circle(x, 0.35, 0.4 * wheel_r), "silver")]
    return parts


def bicycle(jit):
    r = jit(0.38, 0.05)
    rear, front, crank, seat, bars = (-0.6, 0.3), (0.6, 0.3), (0.0, 0.3), (-0.18, -0.25), (0.42, -0.3)
    width = 0.07
    parts = []
    for name, (x, y) in (("rear_wheel", rear), ("front_wheel", front)):
        parts += [P(circle(x, y, r), "dark", name), P(circle(x, y, r - 0.07), HOLE)]
    for a, b in ((rear, crank), (crank, seat), (seat, rear), (seat, (0.38, -0.2)), ((0.38, -0.2), crank),
                 (bars, front)):
        parts.append(P(bar(*a, *b, width), "main"))
    return parts + [P(ellipse(seat[0] - 0.02, seat[1] - 0.06, 0.14, 0.05), "dark", "seat"),
                    P(bar(bars[0] - 0.12, bars[1] - 0.04, bars[0] + 0.1, bars[1], 0.06), "dark", "handlebar"),
                    P(circle(*crank, 0.07), "second")]


def fish(jit):
    tail = -jit(0.95, 0.04)
    return [P(poly(tail, -jit(0.42), tail, jit(0.42), -0.5, 0), "second", "tail"),
            P(poly(-0.1, -0.32, 0.25, -0.36, 0.05, -jit(0.62)), "second", "fin"),
            P(ellipse(0.1, 0, jit(0.68, 0.05), jit(0.4)), "main", "body", textured=True),
            P(circle(0.5, -0.08, 0.09), "light", "eye"), P(circle(0.52, -0.08, 0.05), "dark")]


def arrow(jit):
    head = jit(0.6, 0.06)
    fletch = poly(-0.95, -0.22, -0.68, -0.22, -0.5, 0, -0.77, 0)
    return [P(bar(-0.9, 0, 0.5, 0, jit(0.1)), "main", "shaft", textured=True),
            P(fletch, "second", "fletching"), P(fletch * (1, -1), "second"),
            P(poly(head - 0.2, -0.28, 1.0, 0, head - 0.2, 0.28), "dark", "head")]


def tree(jit):
    return [P(rect(0, 0.55, jit(0.24), 0.8), "brown", "trunk"),
            P(circle(-jit(0.36), 0.0, jit(0.38)), "main", textured=True),
            P(circle(jit(0.36), 0.0, jit(0.38)), "main", textured=True),
            P(circle(0, -0.28, jit(0.5, 0.06)), "main", "crown", textured=True)]


def mushroom(jit):
    cap = arc(0, 0, jit(0.8, 0.05), 0.0, 180, 360, n=32)[:32] * (1, jit(0.7))
    return [P(rect(0, 0.32, jit(0.32), 0.66), "cream", "stem"),
            P(cap, "main", "cap", textured=True),
            P(rect(0, 0.02, 1.4, 0.06), "second")]


def key(jit):
    bow_r = jit(0.35, 0.06)
    return [P(circle(-0.6, 0, bow_r), "main", "bow", textured=True), P(circle(-0.6, 0, 0.45 * bow_r), HOLE),
            P(bar(-0.3, 0, 0.95, 0, jit(0.13)), "main", textured=True),
            P(rect(0.62, 0.14, 0.1, jit(0.24)), "main", "bit"), P(rect(0.85, 0.12, 0.1, jit(0.2)), "main")]


def bottle(jit):
    width = jit(0.55, 0.06)
    return [P(rect(0, 0.3, width, 1.0), "main", textured=True),
            P(ellipse(0, -0.2, width / 2, 0.16), "main"),
            P(rect(0, -0.45, jit(0.2), 0.45), "main", "neck"),
            P(rect(0, -0.72, 0.25, 0.12), "second", "cap"),
            P(rect(0, jit(0.35), width + 0.01, 0.38), "light", "label")]


def umbrella(jit):
    r = jit(0.9, 0.04)
    canopy = arc(0, 0, r, 0.0, 180, 360, n=33)[:33]
    scallops = [P(circle(x * r, 0.02, r / 5.5), HOLE) for x in (-0.75, -0.25, 0.25, 0.75)]
    return [P(canopy, "main", "canopy", textured=True), *scallops,
            P(bar(0, -r - 0.1, 0, -r + 0.05, 0.05), "dark"),
            P(bar(0, -0.05, 0, 0.8, 0.06), "dark"),
            P(arc(-0.13, 0.8, 0.16, 0.1, 0, 180), "dark", "handle")]


def sailboat(jit):
    return [P(bar(0, -0.95, 0, 0.45, 0.05), "brown", "mast"),
            P(poly(0.05, -0.85, 0.05, 0.32, jit(0.72), 0.32), "light", "sail", textured=True),
            P(poly(-0.05, -0.65, -0.05, 0.32, -jit(0.52), 0.32), "main", "jib"),
            P(poly(-0.9, 0.4, 0.9, 0.4, 0.65, jit(0.72, 0.05), -0.65, jit(0.72, 0.05)), "second", "hull",
              textured=True)]


def rocket(jit):
    half = jit(0.2, 0.06)
    fin = poly(-half, 0.25, -half, 0.6, -jit(0.48), 0.72)
    return [P(poly(-0.12, 0.6, 0.12, 0.6, 0, jit(0.95, 0.04)), "orange", "flame"),
            *pair(fin, "second"),
            P(rect(0, 0.05, 2 * half, 1.1), "main", "body", textured=True),
            P(poly(-half, -0.5, half, -0.5, 0, -jit(0.95, 0.04)), "second", "nose_cone"),
            P(circle(0, -0.15, 0.55 * half), "sky", "window")]


def mug(jit):
    handle_r = jit(0.3, 0.06)
    return [P(circle(0.42, 0.05, handle_r), "main", "handle"), P(circle(0.42, 0.05, handle_r - 0.11), HOLE),
            P(rect(-0.1, 0.02, jit(0.78, 0.05), 0.95), "main", "body", textured=True),
            P(rect(-0.1, -0.42, 0.7, 0.07), "brown", "rim")]


def lamp(jit):
    return [P(ellipse(0, 0.85, jit(0.4), 0.1), "second", "base"),
            P(bar(0, 0.85, 0, -0.1, 0.07), "second"),
            P(circle(0, 0.02, 0.13), "yellow", "bulb"),
            P(poly(-0.25, -0.7, 0.25, -0.7, jit(0.55), -0.05, -jit(0.55), -0.05), "main", "shade",
              textured=True)]


def bird(jit):
    return [P(bar(-0.1, 0.35, -0.12, 0.72, 0.05), "orange"), P(bar(0.06, 0.35, 0.08, 0.72, 0.05), "orange"),
            P(poly(-0.92, -jit(0.3), -0.92, jit(0.15), -0.35, 0), "second", "tail"),
            P(ellipse(-0.05, 0.05, jit(0.55, 0.05), jit(0.38)), "main", "body", textured=True),
            P(ellipse(-0.12, 0.04, 0.35, jit(0.17), angle=-15), "second", "wing"),
            P(circle(0.45, -0.3, jit(0.25, 0.06)), "main", "head", textured=True),
            P(poly(0.64, -0.37, 0.64, -0.23, jit(0.92, 0.04), -0.3), "orange", "beak"),
            P(circle(0.5, -0.35, 0.05), "dark", "eye")]


def guitar(jit):
    return [P(bar(0, -0.2, 0, -0.82, jit(0.1)), "second", "neck"),
            P(rect(0, -0.9, 0.18, 0.2), "second", "headstock"),
            P(circle(0, 0.45, jit(0.45, 0.05)), "main", "body", textured=True),
            P(circle(0, -0.02, jit(0.33, 0.05)), "main", textured=True),
            P(circle(0, 0.12, jit(0.12)), "dark", "sound_hole"),
            P(rect(0, 0.55, 0.26, 0.06), "dark", "bridge")]


def ice_cream(jit):
    return [P(poly(-0.36, -0.05, 0.36, -0.05, 0, jit(0.95, 0.04)), "tan", "cone", textured=True),
            P(circle(0, -0.22, jit(0.4, 0.05)), "main", "scoop"),
            P(circle(0, -0.58, jit(0.3)), "second", "top_scoop"),
            P(circle(0.05, -0.9, 0.08), "red", "cherry")]


def airplane(jit):
    span = jit(0.95, 0.04)
    wing = poly(-span, 0.1, -0.12, -0.22, 0.12, -0.22, span, 0.1, span, 0.2, 0.12, 0.04, -0.12, 0.04, -span, 0.2)
    tail = poly(-0.36, 0.86, -0.05, 0.66, 0.05, 0.66, 0.36, 0.86, 0.36, 0.93, -0.36, 0.93)
    return [P(wing, "main", "wing", textured=True), P(tail * (jit(1.0), 1), "second", "tail"),
            P(ellipse(0, 0, jit(0.13), 0.95), "main", "fuselage"),
            P(ellipse(0, -0.65, 0.07, 0.13), "sky", "cockpit")]


def candle(jit):
    height = jit(1.0, 0.06)
    top = 0.8 - height
    return [P(ellipse(0, 0.85, jit(0.45), 0.1), "second", "holder"),
            P(rect(0, 0.8 - height / 2, jit(0.3), height), "main", "body", textured=True),
            P(bar(0, top, 0, top - 0.08, 0.03), "dark"),
            P(ellipse(0, top - 0.25, jit(0.12), jit(0.2)), "yellow", "flame"),
            P(ellipse(0, top - 0.2, 0.06, 0.1), "orange")]


def anchor(jit):
    arms = jit(0.72, 0.05)
    return [P(circle(0, -0.8, 0.16), "main", "ring"), P(circle(0, -0.8, 0.08), HOLE),
            P(bar(0, -0.66, 0, 0.88, 0.12), "main", "shank", textured=True),
            P(bar(-jit(0.4), -0.45, jit(0.4), -0.45, 0.1), "main", "stock"),
            P(arc(0, 0.2, arms, arms - 0.13, 15, 165), "main", "crown", textured=True),
            *pair(poly(-arms - 0.1, 0.4, -arms + 0.2, 0.3, -arms + 0.02, 0.13), "main")]


def hammer(jit):
    return [P(bar(0, -0.45, 0, 0.95, jit(0.16)), "brown", "handle", textured=True),
            P(rect(-0.12, -0.62, jit(0.65, 0.06), 0.28), "main", "head"),
            P(poly(0.18, -0.76, 0.55, -0.7, jit(0.82, 0.06), -0.42, 0.5, -0.54, 0.18, -0.48), "main", "claw")]


def balloon(jit):
    rx, ry = jit(0.5, 0.06), jit(0.62, 0.06)
    string = [bar(0, 0.4, 0.08, 0.6, 0.025), bar(0.08, 0.6, -0.04, 0.8, 0.025), bar(-0.04, 0.8, 0.06, 0.97, 0.025)]
    return [*(P(s, "dark") for s in string),
            P(ellipse(0, -0.25, rx, ry), "main", "body", textured=True),
            P(ellipse(-0.45 * rx, -0.25 - 0.45 * ry, 0.07, 0.13, angle=25), "light"),
            P(poly(-0.07, -0.25 + ry + 0.08, 0.07, -0.25 + ry + 0.08, 0, -0.25 + ry - 0.02), "main", "knot")]


def traffic_light(jit):
    r = jit(0.16, 0.06)
    return [P(bar(0, 0.3, 0, 0.98, 0.1), "grey", "pole"),
            P(rect(0, -0.32, jit(0.52, 0.05), 1.34), "main", "box", textured=True),
            P(circle(0, -0.75, r), "red", "top_light"), P(circle(0, -0.32, r), "yellow", "middle_light"),
            P(circle(0, 0.11, r), "green", "bottom_light")]


def turtle(jit):
    leg = ellipse(0, 0, 0.2, 0.13)
    return [P(ellipse(0, -0.75, jit(0.17), jit(0.22)), "second", "head"),
            *pair(leg + (-0.5, -0.38), "second"), *pair(leg + (-0.5, 0.42), "second"),
            P(poly(-0.07, 0.6, 0.07, 0.6, 0, jit(0.85, 0.05)), "second", "tail"),
            P(ellipse(0, 0, jit(0.55, 0.05), jit(0.65, 0.05)), "main", "shell", textured=True)]


def apple(jit):
    return [P(bar(0, -0.3, 0.08, -0.78, 0.07), "brown", "stem"),
            P(ellipse(0.28, -0.62, jit(0.24), 0.1, angle=-30), "green", "leaf"),
            P(circle(-0.22, 0.12, jit(0.55, 0.05)), "main", textured=True),
            P(circle(0.22, 0.12, jit(0.55, 0.05)), "main", "body", textured=True)]


def kite(jit):
    top, side, bottom = (0, -0.95), (jit(0.55), -0.35), (0, jit(0.45))
    tail = [bar(0, 0.45, -0.18, 0.68, 0.025), bar(-0.18, 0.68, 0.02, 0.8, 0.025), bar(0.02, 0.8, -0.22, 0.97, 0.025)]
    bow = poly(-0.08, -0.05, 0.08, 0.05, 0.08, -0.05, -0.08, 0.05)
    return [*(P(t, "dark") for t in tail), P(bow + (-0.18, 0.68), "red", "bow"), P(bow + (0.02, 0.8), "red"),
            P(poly(*top, *side, 0, -0.35), "main", "sail", textured=True),
            P(poly(0, -0.35, *side, *bottom), "second"),
            P(poly(*top, -side[0], side[1], 0, -0.35), "second"),
            P(poly(0, -0.35, -side[0], side[1], *bottom), "main", textured=True)]


def teapot(jit):
    handle_r = jit(0.3, 0.06)
    return [P(circle(-0.62, 0.1, handle_r), "main", "handle"), P(circle(-0.62, 0.1, handle_r - 0.11), HOLE),
            P(poly(0.45, 0.05, 0.55, 0.3, jit(0.95, 0.04), -0.3, 0.82, -0.32), "main", "spout"),
            P(ellipse(0, 0.15, jit(0.6, 0.05), jit(0.45)), "main", "body", textured=True),
            P(ellipse(0, -0.3, 0.3, 0.08), "second"), P(circle(0, -0.42, 0.07), "second", "lid")]


# --- the catalog. Pretraining classes come from the front, transfer classes from the back.



def _faces() -> list[ClassDef]:
    F = partial(ClassDef, family="face")
    return [
        F("dog_face", build=dog_face, colors=("brown", "tan", "cream", "grey", "dark"),
          seconds=("brown", "dark", "tan"), textures=("solid", "spots")),
        F("cat_face", build=cat_face, colors=("orange", "grey", "cream", "dark", "tan"), seconds=("light",),
          textures=("solid", "stripes")),
        F("owl_face", build=owl_face, colors=("brown", "grey", "tan", "cream"), seconds=("light",),
          textures=("waves", "dots", "solid")),
        F("bear_face", build=bear_face, colors=("brown", "dark", "tan", "cream"), seconds=("dark", "pink", "tan")),
        F("fox_face", build=fox_face, colors=("orange", "red", "tan", "grey"), seconds=("light",),
          textures=("solid", "stripes")),
        F("rabbit_face", build=rabbit_face, colors=("grey", "cream", "tan", "brown", "light"), seconds=("light",),
          textures=("solid", "spots")),
        F("mouse_face", build=mouse_face, colors=("grey", "silver", "tan", "brown"), seconds=("light",)),
        F("pig_face", build=pig_face, colors=("pink", "cream", "tan", "magenta"), seconds=("pink",),
          textures=("solid", "spots")),
        F("frog_face", build=frog_face, colors=("green", "lime", "olive", "teal"), seconds=("dark",),
          textures=("spots", "solid", "dots")),
        F("panda_face", build=panda_face, colors=("light", "cream", "silver"), seconds=("dark", "brown")),
        F("lion_face", build=lion_face, colors=("tan", "yellow", "orange"), seconds=("brown", "orange", "maroon"),
          textures=("stripes", "waves")),
        F("monkey_face", build=monkey_face, colors=("brown", "maroon", "dark", "grey"), seconds=("tan",),
          textures=("solid", "spots", "stripes")),
    ]


def _radials() -> list[ClassDef]:
    R = partial(ClassDef, family="radial")
    return [
        R("wheel", build=wheel, colors=("silver", "grey", "red", "yellow"), seconds=("dark", "silver", "grey"),
          textures=("solid", "rings"), symmetry=6),
        R("ship_wheel", build=ship_wheel, colors=("brown", "tan", "maroon"), seconds=("yellow", "silver"),
          textures=("solid", "rings", "stripes"), symmetry=8),
        R("flower", build=flower, colors=("red", "pink", "purple", "yellow", "orange"), seconds=("yellow", "brown"),
          textures=("solid", "rings"), symmetry=5),
        R("daisy", build=partial(flower, n=12, petal=(0.42, 0.09), center=0.25), colors=("light", "pink", "yellow"),
          seconds=("yellow", "orange", "brown"), symmetry=12),
        R("star", build=star_shape, colors=("yellow", "orange", "red", "blue", "silver"), seconds=("light", "dark"),
          textures=("solid", "stripes", "dots"), symmetry=5),
        R("gear", build=gear, colors=("grey", "silver", "tan", "brown", "navy"), seconds=("dark",),
          textures=("solid", "rings"), symmetry=10),
        R("sun", build=sun, colors=("yellow", "orange"), seconds=("orange", "yellow", "red"),
          textures=("solid", "rings", "spots"), symmetry=12),
        R("snowflake", build=snowflake, colors=("light", "sky", "teal", "blue"), seconds=("light", "sky"),
          symmetry=6),
        R("pinwheel", build=pinwheel, colors=("red", "blue", "green", "yellow", "purple"), seconds=("light", "dark"),
          textures=("solid", "stripes", "dots"), symmetry=4),
        R("nut", build=nut, colors=("silver", "grey", "tan", "yellow"), seconds=("dark",),
          textures=("solid", "rings", "checker"), symmetry=6),
        R("starfish", build=starfish, colors=("orange", "red", "pink", "purple", "tan"), seconds=("light", "red"),
          textures=("dots", "spots"), symmetry=5),
        R("clover", build=clover, colors=("green", "lime", "olive", "teal"), seconds=("light", "yellow"),
          textures=("solid", "stripes"), symmetry=4),
        R("propeller", build=propeller, colors=("grey", "silver", "navy", "red", "brown"), seconds=("dark", "red"),
          symmetry=3),
        R("lifebuoy", build=lifebuoy, colors=("light", "orange", "yellow"), seconds=("red", "orange", "blue"),
          symmetry=4),
    ]


def _objects() -> list[ClassDef]:
    O = partial(ClassDef, family="object")
    return [
        O("house", build=house, colors=("red", "tan", "cream", "yellow", "sky"), seconds=("maroon", "brown", "dark"),
          textures=("checker", "stripes", "solid")),
        O("car", build=car, colors=("red", "blue", "yellow", "silver", "green"), seconds=("dark",),
          textures=("solid", "stripes")),
        O("truck", build=truck, colors=("silver", "orange", "blue", "light", "green"), seconds=("red", "yellow", "sky"),
          textures=("solid", "stripes", "checker")),
        O("bicycle", build=bicycle, colors=("red", "blue", "dark", "green", "orange"), seconds=("silver",)),
        O("fish", build=fish, colors=("orange", "yellow", "sky", "teal", "silver"), seconds=("orange", "blue", "red"),
          textures=("stripes", "dots", "waves", "solid")),
        O("arrow", build=arrow, colors=("brown", "tan", "yellow", "grey"), seconds=("red", "light", "green"),
          textures=("solid", "stripes")),
        O("tree", build=tree, colors=("green", "olive", "lime", "orange"), seconds=("brown",),
          textures=("spots", "dots", "solid")),
        O("mushroom", build=mushroom, colors=("red", "brown", "tan", "orange"), seconds=("cream", "brown"),
          textures=("dots", "spots", "solid")),
        O("key", build=key, colors=("yellow", "silver", "tan", "grey"), seconds=("dark",)),
        O("bottle", build=bottle, colors=("green", "brown", "teal", "sky", "olive"), seconds=("red", "yellow", "light"),
          textures=("solid", "stripes")),
        O("umbrella", build=umbrella, colors=("red", "blue", "purple", "yellow", "green"), seconds=("dark",),
          textures=("solid", "stripes", "dots", "checker")),
        O("sailboat", build=sailboat, colors=("red", "blue", "orange", "yellow"), seconds=("brown", "navy", "light"),
          textures=("solid", "stripes")),
        O("rocket", build=rocket, colors=("light", "silver", "red", "sky"), seconds=("red", "blue", "dark"),
          textures=("solid", "checker", "stripes")),
        O("mug", build=mug, colors=("red", "blue", "light", "yellow", "green", "cream"), seconds=("dark",),
          textures=("solid", "dots", "stripes", "checker")),
        O("lamp", build=lamp, colors=("cream", "red", "green", "sky", "tan"), seconds=("dark", "brown", "silver"),
          textures=("solid", "stripes", "dots")),
        O("bird", build=bird, colors=("red", "blue", "yellow", "brown", "sky"), seconds=("dark", "brown", "blue"),
          textures=("solid", "waves", "spots")),
        O("guitar", build=guitar, colors=("brown", "orange", "red", "tan", "dark"), seconds=("dark", "brown"),
          textures=("solid", "rings", "stripes")),
        O("ice_cream", build=ice_cream, colors=("pink", "cream", "brown", "lime"), seconds=("pink", "brown", "cream"),
          textures=("checker",)),
        O("airplane", build=airplane, colors=("silver", "light", "grey", "sky"), seconds=("red", "blue", "navy"),
          textures=("solid", "stripes")),
        O("candle", build=candle, colors=("red", "light", "cream", "purple", "sky"), seconds=("silver", "yellow"),
          textures=("solid", "stripes", "spots")),
        O("anchor", build=anchor, colors=("grey", "navy", "dark", "brown"), seconds=("silver",)),
        O("hammer", build=hammer, colors=("grey", "silver", "dark"), seconds=("brown",),
          textures=("stripes", "waves", "solid")),
        O("balloon", build=balloon, colors=("red", "blue", "yellow", "green", "pink", "purple"), seconds=("light",),
          textures=("solid", "dots", "stripes")),
        O("traffic_light", build=traffic_light, colors=("dark", "yellow", "grey", "green"), seconds=("grey",)),
        O("turtle", build=turtle, colors=("green", "olive", "brown", "teal"), seconds=("lime", "olive", "tan"),
          textures=("checker", "spots", "dots")),
        O("apple", build=apple, colors=("red", "green", "yellow", "lime", "maroon"), seconds=("brown",),
          textures=("solid", "spots")),
        O("kite", build=kite, colors=("red", "yellow", "blue", "orange", "magenta"), seconds=("green", "light", "sky"),
          textures=("solid", "stripes", "dots")),
        O("teapot", build=teapot, colors=("light", "blue", "cream", "teal", "brown"), seconds=("blue", "dark", "tan"),
          textures=("solid", "dots", "checker", "stripes")),
    ]


PRETRAIN_ORDER = (
    "dog_face", "wheel", "house", "cat_face", "car", "flower", "fish", "owl_face", "star", "arrow",
    "tree", "bear_face", "gear", "umbrella", "sailboat", "lion_face", "sun", "mushroom", "key", "panda_face",
    "daisy", "bottle", "airplane", "lamp", "propeller", "monkey_face", "anchor", "balloon", "turtle", "clover",
    "hammer", "candle", "kite", "lifebuoy", "apple", "truck", "teapot", "ice_cream", "traffic_light",
    "ship_wheel", "starfish", "mouse_face",
)
TRANSFER_ORDER = (
    "fox_face", "snowflake", "mug", "rabbit_face", "bird", "pinwheel", "rocket", "pig_face", "guitar", "nut",
    "frog_face", "bicycle",
)
CLASSES: dict[str, ClassDef] = {c.name: c for c in _faces() + _radials() + _objects()}
# One order: pretraining classes are a prefix, transfer classes a suffix read backwards.
CLASS_ORDER = PRETRAIN_ORDER + TRANSFER_ORDER[::-1]
assert sorted(CLASS_ORDER) == sorted(CLASSES), "every class appears once in the catalog order"


def _class_def(name: str) -> ClassDef:
    if name not in CLASSES:
        raise UserError(f"unknown synthetic class {name!r}; known classes: {', '.join(CLASS_ORDER)}")
    return CLASSES[name]


@lru_cache(maxsize=None)
def _part_names(name: str) -> tuple[str, ...]:
    parts = CLASSES[name].build(_jitter(np.random.default_rng(0)))
    return tuple(p.name for p in parts if p.name)


def class_info(name: str) -> dict:
    cls = _class_def(name)
    return {"family": cls.family, "rot_symmetric": cls.symmetry > 1, "symmetry_order": cls.symmetry,
            "symmetry_angle": 360.0 / cls.symmetry if cls.symmetry > 1 else None,
            "parts": list(_part_names(name)), "catalog_index": CLASS_ORDER.index(name)}


def class_catalog(spec: SyntheticSpec) -> dict:
    """The classes `spec` uses: pretraining (imagenet/) and transfer (caltech101/, caltech256/) lists,
    disjoint, and per class its family, rotational symmetry and named parts."""
    validate(spec)
    pretrain = list(CLASS_ORDER[: spec.num_classes])
    transfer = list(CLASS_ORDER[::-1][: max(spec.caltech101_classes, spec.caltech256_classes)])
    caltech256 = transfer[: spec.caltech256_classes]
    return {
        "pretrain": pretrain,
        "caltech101": transfer[: spec.caltech101_classes],
        "caltech256": caltech256,
        "caltech256_folders": [f"{i:03d}.{name}" for i, name in enumerate(caltech256, start=1)],
        "classes": {name: class_info(name) for name in pretrain + transfer},
    }


def validate(spec: SyntheticSpec) -> None:
    """Raise UserError naming the first bad field of `spec`."""

    def need(ok: bool, field: str, expected: str) -> None:
        if not ok:
            raise UserError(f"synthetic.{field}={getattr(spec, field)!r}: expected {expected}")

    def is_int(value) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    need(is_int(spec.num_classes) and spec.num_classes >= 2, "num_classes", "an integer >= 2")
    for field in ("train_per_class", "val_per_class", "transfer_per_class"):
        need(is_int(getattr(spec, field)) and getattr(spec, field) >= 1, field, "a positive integer")
    for field in ("caltech101_classes", "caltech256_classes", "distractors", "seed"):
        need(is_int(getattr(spec, field)) and getattr(spec, field) >= 0, field, "an integer >= 0")
    need(is_int(spec.image_size) and spec.image_size >= 16, "image_size", "an integer >= 16 (pixels)")
    need(is_int(spec.jpeg_quality) and 1 <= spec.jpeg_quality <= 100, "jpeg_quality", "an integer in [1, 100]")
    need(isinstance(spec.max_rotation, (int, float)) and 0 <= spec.max_rotation <= 180, "max_rotation",
         "degrees in [0, 180]")
    lo_hi = tuple(spec.scale_range) if isinstance(spec.scale_range, (tuple, list)) else ()
    need(len(lo_hi) == 2 and all(isinstance(v, (int, float)) for v in lo_hi) and 0 < lo_hi[0] <= lo_hi[1] <= 1,
         "scale_range", "two fractions (lo, hi) with 0 < lo <= hi <= 1")
    transfer = max(spec.caltech101_classes, spec.caltech256_classes)
    if spec.num_classes + transfer > len(CLASS_ORDER):
        raise UserError(
            f"synthetic.num_classes={spec.num_classes}: the catalog has {len(CLASS_ORDER)} classes and "
            f"{transfer} are kept for transfer (synthetic.caltech101_classes / caltech256_classes), "
            f"so at most {len(CLASS_ORDER) - transfer} pretraining classes")


# ----------------------------------------------------------------------------- colours and textures


def _jitter(rng: np.random.Generator) -> Jitter:
    return lambda value, spread=0.1: value * rng.uniform(1 - spread, 1 + spread)


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
    parts = _normalised(cls.build(_jitter(rng)), recenter=cls.symmetry == 1)
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
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise UserError(f"render size={size!r}: expected an integer >= 8 (pixels)")
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
    pil = Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    return pil, {"class": class_name, "box": _box(mask), "mask": mask, **_keypoints(parts, pose, size),
                 "rotation": pose.rotation, "scale": pose.scale, "center": list(pose.center), "distractors": placed}


def render_frontal_face(class_name: str, rng: np.random.Generator, size: int, **kwargs) -> tuple[Image.Image, dict]:
    """A face class at rotation 0 (eyes level, left_eye on the image's right), for correspondence."""
    if _class_def(class_name).family != "face":
        raise UserError(f"{class_name!r} is not a face class; faces: "
                        + ", ".join(n for n in CLASS_ORDER if CLASSES[n].family == "face"))
    return render(class_name, rng, size, rotation=0.0, **kwargs)


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


# ----------------------------------------------------------------------------- writing a dataset


class Job(NamedTuple):
    dataset: str
    split: str
    class_name: str
    label: int  # index among the dataset's class folders in sorted order (= ImageFolder's target)
    index: int  # 1-based image number within the class
    image: str  # path relative to the dataset root
    mask: str


def _jobs(spec: SyntheticSpec, catalog: dict) -> list[Job]:
    jobs = []
    pretrain = sorted(catalog["pretrain"])
    for split, count in (("train", spec.train_per_class), ("val", spec.val_per_class)):
        for label, name in enumerate(pretrain):
            for i in range(1, count + 1):
                stem = f"{name}/{name}_{i:05d}"
                jobs.append(Job("imagenet", split, name, label, i, f"{split}/{stem}.JPEG", f"masks/{split}/{stem}.png"))
    for label, name in enumerate(sorted(catalog["caltech101"])):
        for i in range(1, spec.transfer_per_class + 1):
            stem = f"{name}/image_{i:04d}"
            jobs.append(Job("caltech101", "all", name, label, i, f"101_ObjectCategories/{stem}.jpg",
                            f"masks/{stem}.png"))
    for label, (name, folder) in enumerate(zip(catalog["caltech256"], catalog["caltech256_folders"])):
        for i in range(1, spec.transfer_per_class + 1):
            stem = f"{folder}/{label + 1:03d}_{i:04d}"
            jobs.append(Job("caltech256", "all", name, label, i, f"256_ObjectCategories/{stem}.jpg",
                            f"masks/{stem}.png"))
    return jobs


def _image_seed(spec: SyntheticSpec, job: Job) -> np.random.SeedSequence:
    # crc32, not hash(): str hashes are randomised per process.
    return np.random.SeedSequence([spec.seed, zlib.crc32(job.dataset.encode()), zlib.crc32(job.split.encode()),
                                   CLASS_ORDER.index(job.class_name), job.index])


def _render_job(spec: SyntheticSpec, root: Path, job: Job) -> dict:
    rng = np.random.default_rng(_image_seed(spec, job))
    image, meta = render(job.class_name, rng, spec.image_size, spec=spec)
    dataset_root = root / job.dataset
    image.save(dataset_root / job.image, "JPEG", quality=spec.jpeg_quality)
    Image.fromarray(meta.pop("mask")).save(dataset_root / job.mask, "PNG")
    meta["rotation"], meta["scale"] = round(meta["rotation"], 3), round(meta["scale"], 4)
    meta["center"] = [round(v, 2) for v in meta["center"]]
    return {"path": job.image, "mask": job.mask, "split": job.split, "label": job.label, **meta}


def _render_chunk(task: tuple[SyntheticSpec, Path, list[Job]]) -> list[dict]:
    spec, root, jobs = task
    return [_render_job(spec, root, job) for job in jobs]


def generate(spec: SyntheticSpec, out_dir: str | Path, *, workers: int | None = None, progress: bool = True) -> dict:
    """Write the whole dataset under out_dir (replaced atomically) and return a summary:
    counts per dataset/split, images, bytes on disk, seconds and images_per_s."""
    catalog = class_catalog(spec)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not (isinstance(workers, int) and workers >= 1):
        raise UserError(f"workers={workers!r}: expected a positive integer")
    jobs = _jobs(spec, catalog)
    start = time.perf_counter()
    with atomic_path(out_dir) as root:
        for folder in sorted({(Path(j.dataset) / p).parent for j in jobs for p in (j.image, j.mask)}):
            (root / folder).mkdir(parents=True, exist_ok=True)
        records = _run(spec, root, jobs, workers, progress)
        for dataset in sorted({j.dataset for j in jobs}):
            lines = [json.dumps(r, sort_keys=True) for j, r in zip(jobs, records) if j.dataset == dataset]
            (root / dataset / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        (root / "classes.json").write_text(json.dumps({"spec": asdict(spec), **catalog}, indent=2) + "\n")
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    seconds = time.perf_counter() - start
    counts: dict[str, int] = {}
    for job in jobs:
        key = f"imagenet/{job.split}" if job.dataset == "imagenet" else job.dataset
        counts[key] = counts.get(key, 0) + 1
    return {"counts": counts, "classes": {"imagenet": len(catalog["pretrain"]),
                                          "caltech101": len(catalog["caltech101"]),
                                          "caltech256": len(catalog["caltech256"])},
            "images": len(jobs), "bytes": size, "seconds": seconds, "images_per_s": len(jobs) / max(seconds, 1e-9)}


def _run(spec: SyntheticSpec, root: Path, jobs: list[Job], workers: int, progress: bool) -> list[dict]:
    chunk = max(4, min(64, len(jobs) // (workers * 8) or 1))
    tasks = [(spec, root, jobs[i:i + chunk]) for i in range(0, len(jobs), chunk)]
    pool = multiprocessing.get_context().Pool(min(workers, len(tasks))) if workers > 1 and len(tasks) > 1 else None
    records: list[dict] = []
    with pool or contextlib.nullcontext(), tqdm(total=len(jobs), unit="img", desc="synthetic",
                                                 disable=not progress) as bar:
        for batch in (pool.imap if pool else map)(_render_chunk, tasks):  # in order: records follow jobs
            records += batch
            bar.update(len(batch))
    return records


def read_metadata(dataset_root: str | Path, split: str | None = None) -> list[dict]:
    """The records of `<dataset_root>/metadata.jsonl` (optionally one split); paths are relative to the root."""
    lines = Path(dataset_root, "metadata.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line]
    return [r for r in records if split is None or r["split"] == split]
