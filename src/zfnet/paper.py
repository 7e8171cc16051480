"""The paper's reported numbers, kept as data (`paper.json` beside this file) for figures and reports.

    paper.numbers("table5_caltech256")["pretrained"]["60"]   # {"mean": 74.2, "std": 0.3}, percent
"""

from __future__ import annotations

import functools
import json
from pathlib import Path


@functools.lru_cache(maxsize=None)
def _all() -> dict:
    return json.loads((Path(__file__).with_name("paper.json")).read_text())


def numbers(key: str) -> dict:
    """One table or figure of the paper, as printed (percent)."""
    table = _all().get(key)
    if table is None:
        raise KeyError(f"{key!r} is not in paper.json; known: {', '.join(k for k in _all() if k != 'source')}")
    return json.loads(json.dumps(table))  # a copy: callers may edit theirs
