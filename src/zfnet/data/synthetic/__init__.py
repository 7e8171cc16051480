"""The built-in procedurally generated dataset: cartoon objects made of parts, on cluttered backgrounds.

It stands in for ImageNet (pretraining), for Caltech-101/256 (transfer to unseen classes, with their
clutter folders) and for PASCAL VOC 2012 (multi-object scenes of the transfer classes) so the whole
pipeline runs offline on a laptop CPU; torchvision's dataset classes read the trees as they are. Every class is a composite object: parts with a
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

Modules: `shapes` (polygons, parts, colours), `classes` (the drawing of each class), `catalogue` (class
order, families, the dataset spec), `render` (one image and its metadata: one object, clutter only, or a
multi-object scene), `writers` (the dataset on disk), `voc` (the VOC annotation XML and image-set lists).
"""

from zfnet.data.synthetic.catalogue import (
                                            CLASS_ORDER,
                                            CLASSES,
                                            FACE_KEYPOINTS,
                                            SyntheticSpec,
                                            class_catalog,
                                            class_info,
                                            validate,
)
from zfnet.data.synthetic.render import render, render_clutter, render_frontal_face, render_scene
from zfnet.data.synthetic.writers import generate, read_metadata

__all__ = ["CLASS_ORDER", "CLASSES", "FACE_KEYPOINTS", "SyntheticSpec", "class_catalog", "class_info", "generate",
           "read_metadata", "render", "render_clutter", "render_frontal_face", "render_scene", "validate"]
