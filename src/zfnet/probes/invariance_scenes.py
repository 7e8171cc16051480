"""A second invariance measurement (beyond the paper, built-in data only): the generator re-renders a
validation image's scene with only the object translated, scaled or rotated.

    spec = SyntheticSpec(**classes_json["spec"])
    scenes = rerendered(spec, "val/wheel/wheel_00007.JPEG", record, "rotation", values, size=128)  # (1+K, S, S, 3)

The generator is deterministic from (spec, split, class, index) and draws the object and the scene
from separate streams, so a pose override moves the object and leaves the rest alone (see
`zfnet.data.synthetic.render`). Conventions (ours):

* The scene is re-rendered without distractor shapes: they are placed to avoid the object, so they
  would move when it moves. The background field, its texture, the lighting and the noise are the
  same in every step, and the object keeps its shape, colours and texture. The reference (step 0)
  is this re-rendered scene at the image's own pose, not the stored JPEG.
* Each rendering is JPEG-encoded at the spec's quality and prepared as the `prepare` stage does
  (smallest side to `size`, centre square), so the network sees what it saw in validation.
* Steps act on the pose, in the same units as the image-space transforms: translation t moves the
  object's centre down by t pixels of the prepared image; scale s multiplies the object's size;
  rotation a adds a degrees counter-clockwise (as displayed) to the object's rotation.
"""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from zfnet.data.prepare import _centre_square
from zfnet.data.synthetic import render
from zfnet.data.synthetic.catalogue import SyntheticSpec
from zfnet.data.synthetic.writers import Job, _image_seed
from zfnet.errors import UserError

KINDS = ("translation", "scale", "rotation")


def job_of(path: str) -> Job:
    """The generator's job for a built-in image path relative to the dataset root
    ("<split>/<class>/<class>_<index>.JPEG")."""
    parts = PurePosixPath(path).parts
    try:
        split, class_name, index = parts[0], parts[1], int(PurePosixPath(path).stem.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise UserError(f"{path}: not a built-in image path (<split>/<class>/<class>_<index>.JPEG)") from None
    return Job("imagenet", split, class_name, -1, index, path, "")


def poses(record: dict, kind: str, values, size: int, image_size: int) -> list[dict]:
    """Pose overrides (rotation, scale, center) for the reference and each step of `kind`."""
    rotation, scale, (x, y) = float(record["rotation"]), float(record["scale"]), record["center"]
    base = {"rotation": rotation, "scale": scale, "center": (float(x), float(y))}
    steps = []
    for value in (float(v) for v in values):
        if kind == "translation":
            steps.append({**base, "center": (float(x), float(y) + value * image_size / size)})
        elif kind == "scale":
            steps.append({**base, "scale": scale * value})
        elif kind == "rotation":
            steps.append({**base, "rotation": rotation + value})
        else:
            raise UserError(f"invariance: unknown transform {kind!r}; expected one of {', '.join(KINDS)}")
    return [base, *steps]


def rerendered(spec: SyntheticSpec, path: str, record: dict, kind: str, values, size: int) -> np.ndarray:
    """(1 + K, size, size, 3) uint8: the scene of built-in image `path` (its metadata `record`) at its
    own pose, then at each step of `kind`, prepared as the `prepare` stage prepares images."""
    job = job_of(path)
    images = []
    for pose in poses(record, kind, values, size, spec.image_size):
        image, _ = render(job.class_name, np.random.default_rng(_image_seed(spec, job)), spec.image_size,
                          distractors=0, spec=spec, **pose)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=spec.jpeg_quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            images.append(_centre_square(decoded.convert("RGB"), size))
    return np.stack(images)
