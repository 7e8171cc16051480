"""The drawings of every built-in class, as functions of a jitter (see shapes.Jitter).

Families:
- "face": animal faces (dog, cat, owl, ...) with two eyes and a nose, plus ears, muzzle, whiskers;
- "radial": rotationally symmetric objects (wheel, flower, gear, ...), n-fold symmetric;
- "object": asymmetric objects (house, car, arrow, fish, ...).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from zfnet.data.synthetic.shapes import (
    HOLE,
    P,
    Part,
    _turn,
    arc,
    bar,
    circle,
    ellipse,
    mirror,
    pair,
    poly,
    rect,
    regular,
    star,
)

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

