"""Stable import path: `zfnet.models` is `zfnet.nets.models` (build_model and friends)."""

import sys

from zfnet.nets import models

sys.modules[__name__] = models
