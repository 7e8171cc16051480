"""The report as a Weights & Biases Report: the same sections as the HTML page, with live panels.

`build` turns the `Section`s into a `wandb_workspaces` Report: per section a heading, the paper's
numbers, our verdicts and tables as markdown, and a panel grid over the runs of one W&B group.
`spec` and `validate` work offline on the report's serialized model; only `save` needs the API.

    report = build(sections, entity="me", project="zfnet", group="pipeline-ab12", title="ZFNet")
    validate(spec(report))
    print(save(report))
"""

from __future__ import annotations

import copy
import warnings

import pydantic
import wandb_workspaces.reports.v2 as wr
from wandb_workspaces.reports.v2 import internal

from zfnet.report.spec import NOT_RUN, Panel, Section, Verdict

_VERDICT_COLUMNS = ["claim", "subject", "verdict", "rule", "evidence"]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: list[str], rows: list[list[str]], caption: str = "") -> str:
    lines = [f"*{caption}*", ""] if caption else []
    lines.append("| " + " | ".join(map(_cell, columns)) + " |")
    lines.append("|" + " --- |" * len(columns))
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _verdicts_md(verdicts: list[Verdict]) -> str:
    rows = [[v.claim, v.subject, v.verdict, v.rule, v.evidence] for v in verdicts]
    return _md_table(_VERDICT_COLUMNS, rows, "Verdicts")


def _section_md(section: Section) -> str:
    parts = [f"**Paper.** {section.paper}"]
    if section.status == "ran":
        parts.append(f"**Ours.** {section.config}")
    else:
        parts.append(f"**{NOT_RUN.capitalize()}:** the stages behind this section did not run.")
    if section.verdicts:
        parts.append(_verdicts_md(section.verdicts))
    parts += [_md_table(t.columns, t.rows, t.caption) for t in section.tables]
    if section.notes:
        parts.append(section.notes)
    return "\n\n".join(parts)


def _panels(panel: Panel) -> list:
    title = panel.title or None
    keys = list(panel.keys)
    if panel.kind == "media":
        return [wr.MediaBrowser(title=title, media_keys=keys)]
    if panel.kind == "line":
        return [wr.LinePlot(title=title, x=panel.x or "_step", y=keys)]
    if panel.kind == "bar":
        return [wr.BarPlot(title=title, metrics=keys)]
    if panel.kind == "scalar":  # a ScalarChart shows one metric
        return [wr.ScalarChart(title=title or key, metric=key) for key in keys]
    raise ValueError(f"unknown panel kind {panel.kind!r}")


def _grid(panels: list[Panel], entity: str, project: str, group: str) -> wr.PanelGrid:
    # The library parses this string into a filter on the run attribute `group` (backend name of "Group").
    runset = wr.Runset(entity=entity, project=project, name=group, filters=f"Metric('Group') == '{group}'")
    return wr.PanelGrid(runsets=[runset], panels=[p for panel in panels for p in _panels(panel)])


def build(sections: list[Section], *, entity: str, project: str, group: str, title: str,
          description: str = "") -> wr.Report:
    """Per section: a heading, its markdown, and (if it ran) a grid of panels over the runs of `group`."""
    if "'" in group or "\\" in group:
        raise ValueError(f"group {group!r}: the filter string cannot hold quotes or backslashes")
    blocks = []
    for section in sections:
        blocks += [wr.H1(text=section.title), wr.MarkdownBlock(text=_section_md(section))]
        if section.status == "ran" and section.panels:
            blocks.append(_grid(section.panels, entity, project, group))
    # entity is explicit: its default asks the API for the user's default entity.
    return wr.Report(entity=entity, project=project, title=title, description=description, blocks=blocks)


def _without_projects(report: wr.Report) -> wr.Report:
    """A copy whose runsets name no project; the runsets keep their ids."""
    blocks = []
    for block in report.blocks:
        if isinstance(block, wr.PanelGrid):
            block = copy.copy(block)
            block.runsets = [copy.copy(rs) for rs in block.runsets]
            for rs in block.runsets:
                rs.entity, rs.project = "", ""
        blocks.append(block)
    offline = copy.copy(report)
    offline.blocks = blocks
    return offline


def _offline_model(report: wr.Report) -> internal.ReportViewspec:
    """`report._to_model()`, offline.

    `Runset._to_model` asks the API for a named project's internal id, so the model is built from a
    copy without projects and the names are put back; the id is left out (`save` looks it up).
    """
    projects = {rs._id: internal.Project(entity_name=rs.entity, name=rs.project)
                for block in report.blocks if isinstance(block, wr.PanelGrid) for rs in block.runsets}
    viewspec = _without_projects(report)._to_model()
    for block in viewspec.spec.blocks:
        if isinstance(block, internal.PanelGrid):
            for rs in block.metadata.run_sets:
                rs.project = projects[rs.id]
    return viewspec


def spec(report: wr.Report) -> dict:
    """The report's model as a JSON-able dict, keyed as the W&B API keys it (camelCase)."""
    return _offline_model(report).model_dump(by_alias=True, exclude_none=True, mode="json")


def _unknown_parts(viewspec: internal.ReportViewspec) -> list[str]:
    # The library keeps what it cannot parse as Unknown* models instead of failing.
    unknown = []
    for i, block in enumerate(viewspec.spec.blocks):
        if isinstance(block, internal.UnknownBlock):
            unknown.append(f"spec.blocks.{i}")
        elif isinstance(block, internal.PanelGrid):
            panels = block.metadata.panel_bank_section_config.panels
            unknown += [f"spec.blocks.{i}.panels.{j}" for j, p in enumerate(panels)
                        if isinstance(p, (internal.UnknownPanel, dict))]
    return unknown


def _one_line(e: Exception) -> str:
    if isinstance(e, pydantic.ValidationError):
        err = e.errors()[0]
        return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
    return str(e).splitlines()[0]


def validate(spec_dict: dict) -> None:
    """Check `spec_dict` against the library's `ReportViewspec` and rebuild a Report from it."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Failed to validate block type")
            viewspec = internal.ReportViewspec.model_validate(spec_dict)
    except (pydantic.ValidationError, UserWarning) as e:
        raise ValueError(f"invalid report spec: {_one_line(e)}") from None
    unknown = _unknown_parts(viewspec)
    if unknown:
        raise ValueError(f"invalid report spec: unrecognised block or panel at {', '.join(unknown)}")
    try:
        wr.Report._from_model(viewspec)
    except Exception as e:
        raise ValueError(f"report spec does not round-trip to a Report: {_one_line(e)}") from None


def missing_keys(sections: list[Section], logged: dict[str, set[str]]) -> list[str]:
    """Panel keys of run sections that no run of the panel's job_type logged, as "job_type: key"."""
    missing = {f"{panel.job_type}: {key}"
               for section in sections if section.status == "ran"
               for panel in section.panels
               for key in panel.keys if key not in logged.get(panel.job_type, set())}
    return sorted(missing)


def keep_logged_panels(sections: list[Section], runs) -> list[str]:
    """Drop each section's panels over a stage with no run among `runs` (each with `job_type` and `logged()`, the
    keys it logged), or with no key: they would stay empty. Returns the `missing_keys` of the panels kept."""
    logged: dict[str, set[str]] = {}
    for run in runs:
        logged.setdefault(run.job_type, set()).update(run.logged())
    for section in sections:
        section.panels = [p for p in section.panels if p.job_type in logged and p.keys]
    return missing_keys(sections, logged)


def save(report: wr.Report) -> str:
    """Upload the report (needs a W&B login) and return its URL."""
    report.save()
    return report.url

