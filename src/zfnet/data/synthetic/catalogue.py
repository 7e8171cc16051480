"""The catalogue: which classes exist, their order, families and symmetry, and the dataset spec."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from zfnet.data.synthetic.classes import (
    airplane,
    anchor,
    apple,
    arrow,
    balloon,
    bear_face,
    bicycle,
    bird,
    bottle,
    candle,
    car,
    cat_face,
    clover,
    dog_face,
    fish,
    flower,
    fox_face,
    frog_face,
    gear,
    guitar,
    hammer,
    house,
    ice_cream,
    key,
    kite,
    lamp,
    lifebuoy,
    lion_face,
    monkey_face,
    mouse_face,
    mug,
    mushroom,
    nut,
    owl_face,
    panda_face,
    pig_face,
    pinwheel,
    propeller,
    rabbit_face,
    rocket,
    sailboat,
    ship_wheel,
    snowflake,
    star_shape,
    starfish,
    sun,
    teapot,
    traffic_light,
    tree,
    truck,
    turtle,
    umbrella,
    wheel,
)
from zfnet.data.synthetic.shapes import ClassDef, make_jitter
from zfnet.errors import UserError


@dataclass(frozen=True)
class SyntheticSpec:
    """What `generate` writes. Pretraining classes are the first `num_classes` of the catalog order,
    transfer classes are taken from its other end, so both lists are stable as the counts change.
    Caltech-101 classes are the first `caltech101_classes` transfer classes, Caltech-256 the first
    `caltech256_classes` (they overlap, as the real datasets do); 0 skips that dataset. The PASCAL
    VOC 2012-style set shows 1..voc_max_objects transfer-class objects per scene, voc_train +
    voc_val scenes (both 0 skips it).

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
    voc_train: int = 240  # VOC scenes in the train split
    voc_val: int = 240
    voc_max_objects: int = 3  # objects per scene, uniform in 1..voc_max_objects
    voc_scale_range: tuple[float, float] = (0.3, 0.55)  # size of each scene object, as scale_range


FACE_KEYPOINTS = ("left_eye", "right_eye", "nose")


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
    parts = CLASSES[name].build(make_jitter(np.random.default_rng(0)))
    return tuple(p.name for p in parts if p.name)


def class_info(name: str) -> dict:
    cls = _class_def(name)
    return {"family": cls.family, "rot_symmetric": cls.symmetry > 1, "symmetry_order": cls.symmetry,
            "symmetry_angle": 360.0 / cls.symmetry if cls.symmetry > 1 else None,
            "parts": list(_part_names(name)), "catalog_index": CLASS_ORDER.index(name)}


def class_catalog(spec: SyntheticSpec) -> dict:
    """The classes `spec` uses: pretraining (imagenet/) and transfer (caltech101/, caltech256/,
    voc2012: their union, empty when VOC is skipped) lists, the pretraining and transfer lists
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
        "voc2012": transfer if spec.voc_train + spec.voc_val > 0 else [],
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
    for field in ("caltech101_classes", "caltech256_classes", "distractors", "seed", "voc_train", "voc_val"):
        need(is_int(getattr(spec, field)) and getattr(spec, field) >= 0, field, "an integer >= 0")
    need(is_int(spec.image_size) and spec.image_size >= 16, "image_size", "an integer >= 16 (pixels)")
    need(is_int(spec.jpeg_quality) and 1 <= spec.jpeg_quality <= 100, "jpeg_quality", "an integer in [1, 100]")
    need(isinstance(spec.max_rotation, (int, float)) and 0 <= spec.max_rotation <= 180, "max_rotation",
         "degrees in [0, 180]")
    need(is_int(spec.voc_max_objects) and 1 <= spec.voc_max_objects <= 10, "voc_max_objects",
         "an integer in [1, 10]")
    for field in ("scale_range", "voc_scale_range"):
        value = getattr(spec, field)
        lo_hi = tuple(value) if isinstance(value, (tuple, list)) else ()
        need(len(lo_hi) == 2 and all(isinstance(v, (int, float)) for v in lo_hi) and 0 < lo_hi[0] <= lo_hi[1] <= 1,
             field, "two fractions (lo, hi) with 0 < lo <= hi <= 1")
    transfer = max(spec.caltech101_classes, spec.caltech256_classes)
    need(transfer > 0 or spec.voc_train + spec.voc_val == 0, "voc_train" if spec.voc_train else "voc_val",
         "0 without transfer classes (synthetic.caltech101_classes / caltech256_classes): VOC scenes show them")
    if spec.num_classes + transfer > len(CLASS_ORDER):
        raise UserError(
            f"synthetic.num_classes={spec.num_classes}: the catalog has {len(CLASS_ORDER)} classes and "
            f"{transfer} are kept for transfer (synthetic.caltech101_classes / caltech256_classes), "
            f"so at most {len(CLASS_ORDER) - transfer} pretraining classes")

