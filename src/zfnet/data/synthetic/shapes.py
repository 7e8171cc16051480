"""Shapes in the object frame: polygon primitives, parts, class definitions and colour names.

Geometry. Each class is built in an object frame (x right, y down, the object inside the unit disc)
as a list of polygons, then placed with a similarity transform: `scale` is the diameter of the
object's bounding circle as a fraction of the image side, `rotation` is in degrees counter-clockwise
on screen (as PIL's Image.rotate), `center` is in pixels. Pixel coordinates are continuous: pixel
(row i, column j) covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

CIRCLE_VERTICES = 48
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

def make_jitter(rng: np.random.Generator) -> Jitter:
    return lambda value, spread=0.1: value * rng.uniform(1 - spread, 1 + spread)

