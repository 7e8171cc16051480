"""Re-rendered scenes: the pose overrides, and only the object moves (the generator is the oracle)."""

import numpy as np
import pytest

from zfnet.data.synthetic.catalogue import SyntheticSpec
from zfnet.errors import UserError
from zfnet.probes.invariance_scenes import job_of, poses, rerendered

SPEC = SyntheticSpec(image_size=64, jpeg_quality=95)
RECORD = {"rotation": 5.0, "scale": 0.3, "center": [32.0, 32.0]}


def test_job_of_reads_the_class_and_index():
    job = job_of("val/wheel/wheel_00007.JPEG")
    assert (job.split, job.class_name, job.index) == ("val", "wheel", 7)
    with pytest.raises(UserError, match="not a built-in image path"):
        job_of("wheel.JPEG")


def test_poses_move_only_what_the_transform_names():
    base, *steps = poses(RECORD, "translation", [0.0, 8.0], size=32, image_size=64)
    assert base == {"rotation": 5.0, "scale": 0.3, "center": (32.0, 32.0)}
    assert steps == [base, {**base, "center": (32.0, 48.0)}]  # 8 px at 32 = 16 px of the 64 px rendering, down
    assert poses(RECORD, "scale", [2.0], 32, 64)[1] == {**base, "scale": 0.6}
    assert poses(RECORD, "rotation", [90.0], 32, 64)[1] == {**base, "rotation": 95.0}


def test_the_identity_step_is_the_reference_and_the_background_stays():
    scenes = rerendered(SPEC, "val/dog_face/dog_face_00003.JPEG", RECORD, "translation", [0.0, 6.0], size=64)
    assert scenes.shape == (3, 64, 64, 3) and scenes.dtype == np.uint8
    assert np.array_equal(scenes[0], scenes[1])
    assert not np.array_equal(scenes[0], scenes[2])
    # the object (0.3 of the side, centred) never reaches the 16 x 16 corner blocks: JPEG codes them alike
    for rows, cols in ((slice(0, 16), slice(0, 16)), (slice(48, 64), slice(48, 64))):
        assert np.array_equal(scenes[0][rows, cols], scenes[2][rows, cols])
