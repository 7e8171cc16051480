"""What a report is made of, independent of where it is shown (the HTML page, the W&B report).

A report is a list of `Section`s, one per figure or table of the paper. Each holds the paper's
numbers (markdown), ours (rows), our figures (PNG paths), the verdicts on the paper's claims, and
the W&B panels that show the same things from the logged runs (`Panel`: keys exactly as logged).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_RUN = "not run at this scale"
CANNOT_DECIDE = "cannot decide"
UNTRAINED_TOO = "an untrained net does it too"   # the negative control passes as well: not counted as a result
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_RUN, CANNOT_DECIDE, UNTRAINED_TOO)


@dataclass(frozen=True)
class Verdict:
    """One claim of the paper on one model (or on the pair), judged by `rule` from `evidence`."""

    claim: str            # the paper's claim, in words
    subject: str          # the model(s) it was judged on, e.g. "zfnet", "zfnet vs alexnet"
    verdict: str          # one of VERDICTS
    rule: str             # the stated rule that turned the evidence into the verdict
    evidence: str         # the numbers it used, or why there are none

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


@dataclass(frozen=True)
class Panel:
    """One W&B panel over the runs of one stage (`job_type`), showing logged keys."""

    kind: str                  # "media" | "line" | "bar" | "scalar"
    keys: tuple[str, ...]      # media or metric keys, exactly as logged
    job_type: str              # the stage whose runs logged them ("train", "visualize", ...)
    title: str = ""
    x: str | None = None       # line plots: the x key ("epoch", "_step")


@dataclass
class Table:
    """Rows of a side-by-side table; cells are already formatted strings."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """One figure or table of the paper: what it reports, what we got, and the verdicts."""

    id: str                    # "fig1" .. "fig9", "table1" .. "table7"
    title: str
    paper: str                 # markdown: what the paper reports (from paper.json)
    config: str                # how ours was produced (scale, dataset, stage)
    status: str = "ran"        # "ran" or NOT_RUN (the stages behind it did not run)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG path)
    verdicts: list[Verdict] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    notes: str = ""            # markdown: what a reader needs to read ours right


def verdict_summary(sections: list[Section], not_run_stages: dict[str, str]) -> dict:
    """The report's metrics: the count of each verdict, every verdict (its section first), the sections whose
    stages did not run, and, when any said why (`not_run_stages`: {stem: reason}), those reasons."""
    verdicts = [{"section": s.id, **asdict(v)} for s in sections for v in s.verdicts]
    counts = Counter(v["verdict"] for v in verdicts)
    summary = {"counts": {k: counts.get(k, 0) for k in VERDICTS}, "claims": verdicts,
               "not_run_sections": [s.id for s in sections if s.status != "ran"]}
    if not_run_stages:
        summary["not_run_stages"] = not_run_stages
    return summary
