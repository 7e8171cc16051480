"""Positive control for Table 1's claims: the paper's own numbers as if they were ours.

The paper measured 5 dog images; its mean +- std per row and layer is read as over the 10 pairs of those images
(what a mean over pairs has; the paper does not say). Each row's 10 per-pair Deltas are synthesized with exactly
the paper's mean and std (ddof 0), placed at random over the pairs, every row independently of the others: the paper
gives no covariances, and independence is the least favourable pairing (real rows measured on the same images move
together, which narrows the paired interval). n = 5 images: the jackknife's t has 4 degrees of freedom (2.776).

What the paper's numbers support at its n, judged by our rules (over 20 seeded arrangements):
- layer 5, gap 0.107 - 0.0717 = +0.035 with a per-pair spread of about 0.018: at 5 images the CI (+-2.776 SE,
  SE 0.003 to 0.014 by arrangement) excludes zero above in 17 of the 20 arrangements, and touches zero (-0.005 to 0.000) in 3: at
  5 images even 5 of 5 images with a positive gap is sign-test p 0.0625. Reproduced in most arrangements, never not
  reproduced. Reversed (random 0.035 below the parts): not reproduced in most, never reproduced.
- layer 7, gap 0.073 - 0.0687 = +0.004, spread about 0.016: the CI (+-0.011 to 0.029) reaches past the margin
  (25% of 0.069 = 0.017) in 18 of 20 arrangements: the paper's 5 images cannot show "alike" within 25%. Cannot
  decide or reproduced, never not reproduced. Reversed (the layer-5 effect at layer 7: random 49% above the
  parts): never reproduced.
- From the printed mean +- std alone (no per-pair data) our conservative fallback cannot decide layer 5: the bound
  0.017 + 0.0103 gives a CI of +0.035 +- 0.054.
"""

from __future__ import annotations

import numpy as np

from zfnet import paper
from zfnet.report import claims
from zfnet.report.spec import CANNOT_DECIDE, NOT_REPRODUCED, REPRODUCED

IMAGES = 5                                          # the paper's dog images
PAIRS = [(i, j) for i in range(IMAGES) for j in range(i + 1, IMAGES)]
PRINTED = paper.numbers("table1_correspondence")["rows"]
ROWS, PARTS = tuple(PRINTED), ("right_eye", "left_eye", "nose")
ARRANGEMENTS = range(20)                            # seeds of the placement over pairs


def exactly(mean: float, std: float, rng) -> list[float]:
    """10 values with exactly this mean and std (ddof 0), in a random arrangement."""
    z = rng.normal(size=len(PAIRS))
    z = (z - z.mean()) / z.std()
    return list(mean + std * z)


def paper_metrics(printed: dict, seed: int, evidence: bool = True) -> dict:
    """correspondence_<model>.json with its evidence, from {row: {layer: {mean, std}}} (one class of 5 images)."""
    rng = np.random.default_rng(seed)
    delta = {row: {layer: exactly(s["mean"], s["std"], rng) for layer, s in layers.items()} for row, layers in printed.items()}
    metrics = {"layers": {"layer5": "pool5", "layer7": "relu7"}, "images": IMAGES, "average": {"table": printed}}
    if evidence:
        metrics["evidence"] = {"layers": metrics["layers"], "classes": {"dog": {
            "paths": [f"dog_{i}.jpg" for i in range(IMAGES)], "per_pair": {"images": PAIRS, "delta": delta}}}}
    return metrics


def reversed_layer5(printed: dict) -> dict:
    """Random below the parts by the paper's layer-5 gap (the parts' rows kept)."""
    parts = np.mean([printed[p]["layer5"]["mean"] for p in PARTS])
    gap = printed["random"]["layer5"]["mean"] - parts
    return {**printed, "random": {**printed["random"], "layer5": {**printed["random"]["layer5"], "mean": parts - gap}}}


def reversed_layer7(printed: dict) -> dict:
    """Layer 7 with the paper's layer-5 effect: random above the parts by the same share (49%)."""
    share = printed["random"]["layer5"]["mean"] / np.mean([printed[p]["layer5"]["mean"] for p in PARTS])
    parts7 = np.mean([printed[p]["layer7"]["mean"] for p in PARTS])
    return {**printed, "random": {**printed["random"], "layer7": {**printed["random"]["layer7"], "mean": parts7 * share}}}


def verdicts_over_arrangements(printed: dict, layer: int) -> list[str]:
    return [claims.correspondence(paper_metrics(printed, seed), "paper")[layer].verdict for seed in ARRANGEMENTS]


def test_the_papers_numbers_reproduce_layer_5_and_never_contradict_layer_7():
    fives, sevens = verdicts_over_arrangements(PRINTED, 0), verdicts_over_arrangements(PRINTED, 1)
    assert NOT_REPRODUCED not in fives and fives.count(REPRODUCED) >= 15
    assert NOT_REPRODUCED not in sevens and sevens.count(CANNOT_DECIDE) > len(sevens) / 2


def test_reversed_effects_are_not_reproduced():
    fives = verdicts_over_arrangements(reversed_layer5(PRINTED), 0)
    assert REPRODUCED not in fives and fives.count(NOT_REPRODUCED) >= 15
    assert REPRODUCED not in verdicts_over_arrangements(reversed_layer7(PRINTED), 1)
    five = claims.correspondence(paper_metrics(reversed_layer5(PRINTED), 0), "paper")[0]
    assert five.verdict == NOT_REPRODUCED and "excludes zero on the other side" in five.evidence


def test_the_printed_aggregates_alone_cannot_decide_layer_5():
    five = claims.correspondence(paper_metrics(PRINTED, 0, evidence=False), "paper")[0]
    assert five.verdict == CANNOT_DECIDE and "no per-pair evidence" in five.evidence
