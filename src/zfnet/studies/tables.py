"""Tables 2 and 3 as rows of numbers: ours beside the paper's, all errors in percent.

Pure functions of already measured values (the runs' metrics files, the ensembles' errors) and of
`zfnet.paper`, so that the stage, the report and the tests read the same rows.
"""

from __future__ import annotations

from typing import Any

from zfnet import paper

TABLE3_COLUMNS = ("train_top1", "val_top1", "val_top5")
# Our metric (a fraction) behind each Table 3 column: the paper's test is the 10-crop one.
TABLE3_METRICS = {"train_top1": "train_top1_error", "val_top1": "val_top1_error_10crop",
                  "val_top5": "val_top5_error_10crop"}
TABLE2_COLUMNS = ("val_top1", "val_top5")


def percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100.0 * fraction, 2)


def table3(run_metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per row of the paper's Table 3, in its order.

    `run_metrics` holds each finished run's metrics under the row's name (a row missing from it is
    "not run": its numbers are None). `delta_val_top1` is a row's val top-1 minus that of its base row
    (the AlexNet replication or the ZF model), ours and the paper's: the comparison Table 3 is about.
    """
    printed = paper.numbers("table3_ablations")["rows"]
    rows = []
    for run, theirs in printed.items():
        metrics = run_metrics.get(run)
        ours = {column: percent(metrics[key]) if metrics else None for column, key in TABLE3_METRICS.items()}
        rows.append({"run": run, "label": theirs["label"], "ours": ours,
                     "paper": {column: theirs[column] for column in TABLE3_COLUMNS}})
    by_run = {row["run"]: row for row in rows}
    for row in rows:
        base = by_run[printed[row["run"]]["base"]]
        for side in ("ours", "paper"):
            value, reference = row[side]["val_top1"], base[side]["val_top1"]
            row[side]["delta_val_top1"] = (None if value is None or reference is None or base is row
                                           else round(value - reference, 2))
    return rows


def table2(errors: dict[str, tuple[float, float]], members: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One row per row of the paper's Table 2; `errors` holds our (top-1, top-5) fractions per entry.

    Rows we have no entry for (Krizhevsky et al.'s own number, or an ensemble not configured) keep
    None as ours.
    """
    printed = paper.numbers("table2_imagenet")["rows"]
    rows = []
    for name, theirs in printed.items():
        ours = errors.get(name)
        rows.append({"entry": name, "label": theirs["label"], "members": members.get(name, []),
                     "ours": {"val_top1": percent(ours[0]) if ours else None,
                              "val_top5": percent(ours[1]) if ours else None},
                     "paper": {column: theirs[column] for column in (*TABLE2_COLUMNS, "test_top5")}})
    for name in (name for name in errors if name not in printed):
        top1, top5 = errors[name]
        rows.append({"entry": name, "label": name, "members": members.get(name, []),
                     "ours": {"val_top1": percent(top1), "val_top5": percent(top5)},
                     "paper": {"val_top1": None, "val_top5": None, "test_top5": None}})
    return rows


def seed_replicates(specs: dict[str, dict[str, Any]], default_seed: int) -> dict[str, list[str]]:
    """Each run's seed replicates (`ablations.runs`): itself, then the runs whose options are its own but for
    `seed` (absent: `default_seed`), one run per seed, in order. Table 2's extra ZF seeds replicate the row "zfnet"."""
    def options(spec: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in spec.items() if key != "seed"}

    replicates = {}
    for run, spec in specs.items():
        seeds, runs = {spec.get("seed", default_seed)}, [run]
        for other, other_spec in specs.items():
            seed = other_spec.get("seed", default_seed)
            if options(other_spec) == options(spec) and seed not in seeds:
                seeds.add(seed)
                runs.append(other)
        replicates[run] = runs
    return replicates


def gathered_evidence(evidence: dict[str, dict], specs: dict[str, dict[str, Any]], default_seed: int) -> dict:
    """Table 3's evidence: the per-image evidence of the finished runs that wrote one (`evidence`: {run: its
    evidence file}), and each such run's seed replicates among them (`specs`: their `ablations.runs` options; the
    report resamples the seeds of a row: Table 2's 5 ZF nets)."""
    return {"runs": evidence, "seeds": seed_replicates({run: specs[run] for run in evidence}, default_seed)}


def table2_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Table 2's rows as (columns, cells) of one flat table (a W&B Table): ours beside the paper's."""
    columns = ["entry", "model", "members", *(f"{c} ours" for c in TABLE2_COLUMNS),
               *(f"{c} paper" for c in TABLE2_COLUMNS)]
    return columns, [[r["entry"], r["label"], len(r["members"]), *(r["ours"][c] for c in TABLE2_COLUMNS),
                      *(r["paper"][c] for c in TABLE2_COLUMNS)] for r in rows]


def table3_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Table 3's rows as (columns, cells) of one flat table (a W&B Table): ours beside the paper's."""
    columns = ["run", "model", *(f"{c} ours" for c in TABLE3_COLUMNS), *(f"{c} paper" for c in TABLE3_COLUMNS)]
    return columns, [[r["run"], r["label"], *(r["ours"][c] for c in TABLE3_COLUMNS),
                      *(r["paper"][c] for c in TABLE3_COLUMNS)] for r in rows]


def markdown(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """The rows as a Markdown table, ours and the paper's side by side (for logs, notes and README)."""
    head = ["model", *(f"{c} ours" for c in columns), *(f"{c} paper" for c in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["label"], *(_cell(row["ours"].get(c)) for c in columns),
                 *(_cell(row["paper"].get(c)) for c in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
