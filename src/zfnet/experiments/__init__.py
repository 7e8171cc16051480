"""One entry point per experiment of the paper: `zfnet.experiments.<name>.run(model, data, settings)` returns a
result dataclass (the tensors, the measures, the figure inputs). No DVC, Hydra, files or W&B: a notebook or a
test calls them on any network and images; the stage scripts in pipelines/ call them and save what they return.
`settings` is the experiment's config section (e.g. `cfg.occlusion`) or any object with the same attributes."""
