"""The report: the paper's figures and tables beside ours, each claim judged by a stated rule.

`spec` (sections, verdicts, panels), `rules` (the rules), `claims` (each claim from the metrics),
`sections` (figures 1-9, tables 1-7), `html` (the self-contained page), `wandb_report` (the W&B report).
"""
