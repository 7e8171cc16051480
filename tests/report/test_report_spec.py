"""The report's metrics file: every verdict, counted."""

from zfnet.report.spec import CANNOT_DECIDE, NOT_RUN, REPRODUCED, VERDICTS, Section, Verdict, verdict_summary


def section(id_, *verdicts, status="ran"):
    return Section(id=id_, title=id_, paper="", config="", status=status,
                   verdicts=[Verdict(f"claim {i}", "zfnet", v, "rule", "evidence") for i, v in enumerate(verdicts)])


def test_the_summary_counts_every_verdict_and_names_what_did_not_run():
    sections = [section("fig2", REPRODUCED, CANNOT_DECIDE), section("fig9", NOT_RUN, status=NOT_RUN),
                section("table2", REPRODUCED)]
    summary = verdict_summary(sections, {})
    assert summary["counts"] == {**dict.fromkeys(VERDICTS, 0), REPRODUCED: 2, CANNOT_DECIDE: 1, NOT_RUN: 1}
    assert list(summary["counts"]) == list(VERDICTS)
    assert [(c["section"], c["claim"], c["verdict"]) for c in summary["claims"]] == [
        ("fig2", "claim 0", REPRODUCED), ("fig2", "claim 1", CANNOT_DECIDE), ("fig9", "claim 0", NOT_RUN),
        ("table2", "claim 0", REPRODUCED)]
    assert set(summary["claims"][0]) == {"section", "claim", "subject", "verdict", "rule", "evidence"}
    assert summary["not_run_sections"] == ["fig9"] and "not_run_stages" not in summary
    assert verdict_summary(sections, {"transfer_pascal": "why"})["not_run_stages"] == {"transfer_pascal": "why"}
