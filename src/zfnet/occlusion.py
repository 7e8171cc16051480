"""Stable import path: `zfnet.occlusion` is `zfnet.probes.occlusion` (occlusion_map and friends)."""

import sys

from zfnet.probes import occlusion

sys.modules[__name__] = occlusion
