"""Stable import path: `zfnet.deconv` is `zfnet.probes.deconv` (the Deconvnet)."""

import sys

from zfnet.probes import deconv

sys.modules[__name__] = deconv
