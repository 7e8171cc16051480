"""A training run: the optimizer the recipe asks for, filter renormalization, the plateau lr drops across a
resume, which checkpoint is "best", and when an interrupted run may resume.

The last part, resume / start / refuse, works on run folders of fake checkpoints (the train stage end to end,
killed and resumed on two devices, refused and restarted: tests/nets/test_train_resume.py).

Tiny on purpose: one 8-image batch per epoch of a width-0.25 network on 64x64 inputs, through the same
`make_trainer` the train stage uses. Expected values are worked out by hand (the SGD update, the
ReduceLROnPlateau rule written out below), never read back from the code under test.
"""

import hashlib
import json
import logging
import warnings
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfnet.errors import UserError
from zfnet.nets.evaluation import MONITOR
from zfnet.nets.runs import (
    RunPlan,
    describe_changes,
    device_for,
    make_trainer,
    move_aside,
    plan_run,
    record_run,
    resume_components,
    run_components,
    take_over,
    training_code,
    world_size_for,
)
from zfnet.nets.runs import classifier as runs_classifier
from zfnet.nets.runs import fit as runs_fit
from zfnet.nets.training import Classifier, NonFiniteLoss

from conftest import plateau_schedule, restored_torch_state

ARCH = {"name": "zfnet", "input_size": 64, "width": 0.25, "init": "fan_in"}
TRAINER = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto", "precision": "32-true",
           "deterministic": True, "benchmark": False}


@pytest.fixture(scope="module", autouse=True)
def restore_global_state():
    """What the trainers of these tests change for the whole process, undone for the tests after them."""
    with restored_torch_state():
        yield


@pytest.fixture(autouse=True)
def quiet_lightning():
    logger = logging.getLogger("pytorch_lightning")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logger.setLevel(level)


def classifier(**kwargs) -> Classifier:
    return Classifier(ARCH, num_classes=4, mean=torch.full((3, 64, 64), 128.0), crop=64, input_scale=0.02, **kwargs)


def convs(module: Classifier) -> list[nn.Conv2d]:
    return [m for m in module.model.modules() if isinstance(m, nn.Conv2d)]


def filter_rms(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().pow(2).mean(dim=(1, 2, 3)).sqrt()


# --------------------------------------------------------------------------- optimizer wiring


def test_sgd_gets_the_recipe_and_only_weights_decay():
    module = classifier(lr=0.03, momentum=0.8, weight_decay=0.002)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    weights = {id(p) for p in module.model.parameters() if p.dim() > 1}  # conv and fc weights
    biases = {id(p) for p in module.model.parameters() if p.dim() == 1}
    decay = {}
    for group in optimizer.param_groups:
        assert group["lr"] == 0.03 and group["momentum"] == 0.8 and not group["nesterov"]
        for p in group["params"]:
            assert id(p) not in decay, "a parameter in two groups"
            decay[id(p)] = group["weight_decay"]
    assert set(decay) == weights | biases and len(weights) == 8 and len(biases) == 8
    assert all(decay[i] == 0.002 for i in weights) and all(decay[i] == 0.0 for i in biases)

    # One step with zero gradients is weight decay alone: w <- w - lr * wd * w; biases do not move.
    before = {name: p.detach().clone() for name, p in module.model.named_parameters()}
    for p in module.model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in module.model.named_parameters():
        expected = before[name] * (1 - 0.03 * 0.002) if p.dim() > 1 else before[name]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("radius", [0.1, None])
def test_optimizer_step_renormalizes_the_conv_filters(radius):
    module = classifier(lr=0.0, renorm_radius=radius)
    optimizer = module.configure_optimizers()
    with torch.no_grad():
        for conv in convs(module):
            rms = torch.full((conv.out_channels,), 0.5)
            rms[::2] = 0.05  # every other filter is inside the radius
            conv.weight.mul_((rms / filter_rms(conv)).view(-1, 1, 1, 1))
    before = [filter_rms(conv) for conv in convs(module)]
    biases = [conv.bias.detach().clone() for conv in convs(module)]
    module.optimizer_step(0, 0, optimizer, lambda: None)  # lr 0: only the renormalization can move weights
    for conv, rms, bias in zip(convs(module), before, biases):
        expected = rms if radius is None else rms.clamp(max=radius)
        torch.testing.assert_close(filter_rms(conv), expected, rtol=1e-5, atol=0)
        assert torch.equal(conv.bias, bias)


# --------------------------------------------------------------------------- a real fit, interrupted and resumed


class LearningRates(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_epoch_start(self, trainer, module):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def loaders():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=g)
    data = TensorDataset(images, torch.arange(8) % 4)
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=8)


LR, FACTOR, PATIENCE = 1e-5, 0.2, 1  # a tiny lr keeps val error flat, so the plateau drops come on schedule


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """3 epochs, then a fresh process's view: a new module resumed from last.ckpt up to epoch 6."""
    out = tmp_path_factory.mktemp("run")
    kwargs = dict(lr=LR, momentum=0.9, lr_factor=FACTOR, lr_patience=PATIENCE, renorm_radius=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)  # the same run every time (the global generator is restored after this module)
        first = classifier(**kwargs)
        with torch.no_grad():
            for conv in convs(first):  # every filter well outside the radius: the first step must rescale all
                conv.weight.mul_((0.5 / filter_rms(conv)).view(-1, 1, 1, 1))
        lrs = LearningRates()
        trainer, _ = make_trainer(out, TRAINER, epochs=3, snapshot_epochs=[])
        trainer.callbacks.append(lrs)
        trainer.fit(first, *loaders())
        first_lrs, first_history = list(lrs.lrs), list(first.history)

        second = classifier(**kwargs)
        lrs = LearningRates()
        trainer, _ = make_trainer(out, TRAINER, epochs=6, snapshot_epochs=[])
        trainer.callbacks.append(lrs)
        trainer.fit(second, *loaders(), ckpt_path=out / "checkpoints" / "last.ckpt", weights_only=True)
    return {"first": first, "first_lrs": first_lrs, "first_history": first_history, "second": second,
            "lrs": first_lrs + lrs.lrs, "trainer": trainer}


def test_plateau_drops_the_lr_on_schedule_across_a_resume(resumed):
    history = resumed["second"].history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    assert history[:3] == resumed["first_history"]  # the rows before the interruption travel in the checkpoint
    expected = plateau_schedule(LR, [row["val/top1_error"] for row in history], FACTOR, PATIENCE)
    assert expected[-1] < expected[0], "no lr drop in 6 epochs: the test would be vacuous"
    assert resumed["lrs"] == pytest.approx(expected, rel=1e-9)
    assert [row["train/lr"] for row in history] == pytest.approx(expected, rel=1e-6)  # logged as float32
    assert resumed["trainer"].global_step == 6  # one batch per epoch, none repeated or skipped
    assert resumed["trainer"].optimizers[0].param_groups[0]["momentum"] == 0.9


def test_every_optimizer_step_renormalizes_the_filters(resumed):
    for module in (resumed["first"], resumed["second"]):
        for conv in convs(module):
            rms = filter_rms(conv)
            # brought down from 0.5 to the radius by the first step, kept there by every later one
            assert (rms <= 0.1 * (1 + 1e-5)).all() and (rms > 0.09).all(), rms


# --------------------------------------------------------------------------- the best checkpoint


class Scripted(pl.LightningModule):
    """Reports a given val top-1 error each epoch and keeps a copy of its weights at each epoch's end."""

    def __init__(self, errors):
        super().__init__()
        self.errors = errors
        self.layer = nn.Linear(2, 1)
        self.weights = []

    def training_step(self, batch, batch_index):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_index):
        self.log(MONITOR, self.errors[self.current_epoch])

    def on_train_epoch_end(self):
        self.weights.append(self.layer.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_best_checkpoint_holds_the_epoch_with_the_lowest_val_top1(tmp_path):
    data = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=4)
    module = Scripted([0.5, 0.25, 0.375, 0.25])  # epoch 2 is best; epoch 4 only ties it
    trainer, best = make_trainer(tmp_path, TRAINER, epochs=4, snapshot_epochs=[2])
    trainer.fit(module, data, data)
    checkpoints = tmp_path / "checkpoints"
    assert best.best_model_path == str(checkpoints / "best.ckpt")

    def weight(name):
        return torch.load(checkpoints / name, weights_only=True)["state_dict"]["layer.weight"]

    assert not torch.equal(module.weights[1], module.weights[3])
    assert torch.equal(weight("best.ckpt"), module.weights[1])
    assert torch.equal(weight("epoch_002.ckpt"), module.weights[1])
    assert torch.equal(weight("last.ckpt"), module.weights[3])


# --------------------------------------------------------------------------- resume, start, or refuse

SETTINGS = {"seed": 0, "models": {"zfnet": {"width": 0.25, "conv_maps": None}},
            "train": {"lr": 0.01, "batch_size": 16, "snapshot_epochs": list(range(1, 31))}}


def sha16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture
def run(tmp_path):
    """A folder with prepared-data and code files, the components they give, and a run folder to train into."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "index.json").write_text('{"files": ["a.png"]}')
    (tmp_path / "code.py").write_text("x = 1\n")
    data = {"train/index.json": tmp_path / "data" / "index.json"}
    code = {"zfnet/nets/training.py": tmp_path / "code.py"}

    def components(settings=SETTINGS):
        return run_components(settings, data, code)

    return {"root": tmp_path, "out": tmp_path / "outputs" / "train" / "zfnet", "components": components,
            "data": data["train/index.json"], "code": code["zfnet/nets/training.py"]}


def checkpoint_files(out, names=("epoch_001.ckpt", "best.ckpt", "last.ckpt")) -> dict[str, bytes]:
    """Fake checkpoints (distinct bytes each) in `out`; returns what the folder holds, path -> bytes."""
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (out / "checkpoints" / name).write_bytes(f"weights {i}".encode())
    return contents(out)


def contents(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def with_lr(lr):
    return {**SETTINGS, "train": {**SETTINGS["train"], "lr": lr}}


def test_components_hold_each_setting_and_file_by_name(run):
    parts = run["components"]()
    long_list = json.dumps(list(range(1, 31)))  # 110 characters: kept as a hash, not as the value
    assert parts == {
        "settings": {"seed": "0", "models.zfnet.width": "0.25", "models.zfnet.conv_maps": "null",
                     "train.lr": "0.01", "train.batch_size": "16",
                     "train.snapshot_epochs": "sha256:" + sha16(long_list.encode())},
        "data": {"train/index.json": sha16(b'{"files": ["a.png"]}')},
        "code": {"zfnet/nets/training.py": sha16(b"x = 1\n")},
    }
    assert run_components({}, {"gone.json": run["root"] / "gone.json"}, {})["data"] == {"gone.json": "missing"}


def test_training_code_covers_the_stage_script_and_the_training_modules(tmp_path):
    from zfnet.data import loading
    from zfnet.nets import evaluation, runs, training

    stage_file = tmp_path / "train.py"
    stage_file.write_text("pass\n")
    code = training_code(stage_file)
    assert code["pipelines/train.py"] == stage_file
    for module in (training, loading, evaluation, runs):
        assert code[module.__name__.replace(".", "/") + ".py"].samefile(module.__file__)


def test_nothing_kept_starts_and_the_same_run_resumes(run):
    out, parts = run["out"], run["components"]()
    assert plan_run(out, parts) == plan_run(out, parts, restart=True)
    assert not plan_run(out, parts).resume and not plan_run(out, parts).move_aside  # nothing there
    record_run(out, parts, world_size=1, complete=False)
    assert json.loads((out / "run.json").read_text())["world_size"] == 1
    plan = plan_run(out, run["components"](with_lr(0.02)))
    assert not plan.resume and not plan.move_aside  # other settings, but no checkpoint yet: nothing to keep
    checkpoint_files(out)
    plan = plan_run(out, parts)
    assert plan.resume and not plan.complete and not plan.move_aside and plan.world_size == 1
    assert plan_run(out, parts, restart=True) == plan  # restart only takes over a run that differs
    record_run(out, parts, world_size=2, complete=True)
    plan = plan_run(out, parts)
    assert plan.resume and plan.complete and plan.world_size == 2  # finished: resumed to be tested again


def test_other_settings_refuse_naming_the_key_and_keep_every_checkpoint(run):
    out = run["out"]
    record_run(out, run["components"](), world_size=1, complete=False)
    before = checkpoint_files(out)
    changed = {**SETTINGS, "train": {**SETTINGS["train"], "lr": 0.02, "snapshot_epochs": [1]}, "seed": 1}
    with pytest.raises(UserError) as error:
        plan_run(out, run["components"](changed))
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(out))
    assert "(changed: settings seed 0 -> 1, train.lr 0.01 -> 0.02, train.snapshot_epochs)" in message
    assert "train.restart=true" in message and "3 checkpoints" in message
    assert "models.zfnet.width" not in message and "data " not in message and "code " not in message
    assert contents(out) == before


def test_a_long_list_of_changes_is_cut_short():
    old = {"settings": {key: "1" for key in "abcdefgh"}, "data": {}, "code": {}}
    new = {"settings": {key: "2" for key in "abcdefgh"}, "data": {}, "code": {}}
    assert describe_changes(old, new) == "settings a 1 -> 2, b 1 -> 2, c 1 -> 2, d 1 -> 2, e 1 -> 2, f 1 -> 2 and 2 more"


def test_changed_data_or_code_files_are_named(run):
    out = run["out"]
    record_run(out, run["components"](), world_size=1, complete=False)
    before = checkpoint_files(out)
    run["data"].write_text('{"files": ["b.png"]}')
    with pytest.raises(UserError, match=r"\(changed: data train/index.json\)"):
        plan_run(out, run["components"]())
    run["code"].write_text("x = 2\n")
    with pytest.raises(UserError, match=r"\(changed: data train/index.json; code zfnet/nets/training.py\)"):
        plan_run(out, run["components"]())
    assert contents(out) == before


def test_a_finished_run_with_other_settings_is_moved_aside_not_refused(run):
    """What `dvc exp run -S train.lr=...` does to a trained workspace: the finished run goes aside, whole."""
    out = run["out"]
    record_run(out, run["components"](), world_size=1, complete=True)
    checkpoint_files(out)
    plan = plan_run(out, run["components"](with_lr(0.02)))
    assert plan.move_aside and not plan.resume and plan.reason.startswith("finished; changed: settings train.lr")
    record_run(out, run["components"](), world_size=1, complete=False)
    with pytest.raises(UserError, match="train.lr 0.01 -> 0.02"):  # unfinished: refused
        plan_run(out, run["components"](with_lr(0.02)))


def test_restart_moves_the_run_aside_and_deletes_nothing(run):
    out = run["out"]
    record_run(out, run["components"](), world_size=1, complete=True)
    before = checkpoint_files(out)
    plan = plan_run(out, run["components"](with_lr(0.02)), restart=True)
    assert plan.move_aside and not plan.resume and "train.lr 0.01 -> 0.02" in plan.reason
    aside = run["root"] / "outputs" / "moved_aside" / "train"
    first = move_aside(out, aside)
    assert not out.exists() and first.parent == aside and first.name.startswith("zfnet-")
    assert contents(first) == before
    checkpoint_files(out, names=("last.ckpt",))  # a second run, moved aside in the same second
    second = move_aside(out, aside)
    assert second != first and contents(first) == before and set(contents(second)) == {"checkpoints/last.ckpt"}


def test_a_run_json_from_an_older_version_refuses_or_restarts(run):
    out = run["out"]
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"config": "0123456789abcdef", "complete": False}))
    before = checkpoint_files(out)
    with pytest.raises(UserError, match=r"settings or code changed \(run.json from an older version\)"):
        plan_run(out, run["components"]())
    assert contents(out) == before
    plan = plan_run(out, run["components"](), restart=True)
    assert plan.move_aside and "older version" in plan.reason


def test_checkpoints_without_run_json_refuse(run):
    before = checkpoint_files(run["out"])
    with pytest.raises(UserError, match="run.json is missing or unreadable"):
        plan_run(run["out"], run["components"]())
    assert contents(run["out"]) == before


def test_a_slurm_auto_requeue_checkpoint_counts_as_work_to_keep(tmp_path, run):
    """Lightning writes hpc_ckpt_N.ckpt beside checkpoints/ and would restore it into a fresh run on SLURM."""
    out = tmp_path / "hpc_run"
    record_run(out, run["components"](), world_size=8, complete=False)
    (out / "hpc_ckpt_1.ckpt").write_bytes(b"weights")
    with pytest.raises(UserError, match="1 checkpoint of a run that differs"):
        plan_run(out, run["components"](with_lr(0.02)))


def test_the_same_run_without_last_ckpt_starts_over_after_moving_aside(run):
    """Killed between the first epoch's best.ckpt and last.ckpt: nothing to resume from, and nothing deleted."""
    out = run["out"]
    record_run(out, run["components"](), world_size=1, complete=False)
    checkpoint_files(out, names=("best.ckpt",))
    plan = plan_run(out, run["components"]())
    assert not plan.resume and plan.move_aside


# --------------------------------------------------------------------------- what the train stage calls before fitting


def test_the_global_batch_must_split_evenly_over_the_devices():
    trainer = {"num_nodes": 2, "accelerator": "cpu", "devices": 3}
    assert world_size_for(trainer, 12) == 6
    with pytest.raises(UserError, match=r"^train.batch_size: 16 does not split evenly over 6 devices$"):
        world_size_for(trainer, 16)


def test_resume_components_leave_restart_and_the_world_size_out_and_need_prepared_data(tmp_path):
    prepared = tmp_path / "prepared"
    stage_file = tmp_path / "train.py"
    stage_file.write_text("pass\n")
    recipe = {"lr": 0.01, "restart": True, "batch_size": 16}
    trainer = {"precision": "32-true", "channels_last": True, "deterministic": True, "compile": False,
               "devices": 4, "num_workers": 2}
    with pytest.raises(UserError, match=f"^paths.prepared: {prepared} holds no prepared data"):
        resume_components(0, "zfnet", {"width": 0.25}, recipe, trainer, prepared, stage_file)
    for name in ("train/index.json", "val/index.json", "train/mean.npy"):
        (prepared / name).parent.mkdir(parents=True, exist_ok=True)
        (prepared / name).write_text(name)
    parts = resume_components(0, "zfnet", {"width": 0.25}, recipe, trainer, prepared, stage_file)
    assert parts["settings"] == {"seed": "0", "models.zfnet.width": "0.25", "train.lr": "0.01",
                                 "train.batch_size": "16", "trainer.precision": '"32-true"',
                                 "trainer.channels_last": "true", "trainer.deterministic": "true",
                                 "trainer.compile": "false"}
    assert parts["data"] == {name: sha16(name.encode()) for name in ("train/index.json", "val/index.json",
                                                                      "train/mean.npy")}
    assert parts["code"]["pipelines/train.py"] == sha16(b"pass\n") and "zfnet/nets/runs.py" in parts["code"]


def test_take_over_moves_a_run_aside_and_says_so(run, caplog):
    out = run["out"]
    before = checkpoint_files(out)
    aside = run["root"] / "aside"
    with caplog.at_level(logging.INFO, logger="zfnet"):
        take_over(out, aside, RunPlan(resume=False, move_aside=True, reason="finished; changed"), 1, 64, "zfnet")
    [moved] = aside.iterdir()
    assert not out.exists() and contents(moved) == before
    assert f"zfnet: moved the run that was in {out} to {moved} (finished; changed)" in caplog.text


def test_take_over_of_a_resume_on_other_devices_logs_the_new_per_device_batch(run, caplog):
    before = checkpoint_files(run["out"])
    with caplog.at_level(logging.INFO, logger="zfnet"):
        take_over(run["out"], run["root"] / "aside", RunPlan(resume=True, world_size=2), 4, 64, "zfnet")
        take_over(run["out"], run["root"] / "aside", RunPlan(resume=True, world_size=4), 4, 64, "zfnet")
    assert contents(run["out"]) == before and not (run["root"] / "aside").exists()
    assert caplog.text.count("resuming on") == 1 and "per-device batch 32 -> 16 (global batch 64)" in caplog.text


def test_the_classifier_is_seeded_and_takes_the_recipe():
    class Data:
        num_classes, mean = 4, torch.full((3, 64, 64), 128.0)

    recipe = {"crop": 64, "lr": 0.03, "momentum": 0.8, "weight_decay": 0.002, "lr_factor": 0.5, "lr_patience": 3,
              "renorm_radius": None, "flip": False, "input_scale": 0.02}
    trainer = {"channels_last": False, "compile": False, "finite_check_every": 5}
    with restored_torch_state():
        first, again = (runs_classifier(ARCH, recipe, Data(), 7, trainer) for _ in range(2))
        other = runs_classifier(ARCH, recipe, Data(), 8, trainer)
    weights = [m.model.features.conv1.weight for m in (first, again, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert {k: first.hparams[k] for k in recipe} == recipe and first.hparams.seed == 7
    assert first.hparams.num_classes == 4 and first.hparams.finite_check_every == 5


def test_the_device_is_the_cpu_unless_the_trainer_may_use_a_gpu_and_one_is_there(monkeypatch):
    for present in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: present)
        assert device_for("cpu") == torch.device("cpu")
        for accelerator in ("gpu", "cuda", "auto"):
            assert device_for(accelerator) == torch.device("cuda" if present else "cpu"), accelerator


class FakeTrainer:
    """Records what `fit` was asked to do; raises `error` from it when given."""

    def __init__(self, error=None):
        self.error, self.calls = error, []

    def fit(self, module, datamodule=None, ckpt_path=None, weights_only=False):
        self.calls.append(ckpt_path)
        if self.error:
            raise self.error


def test_fit_resumes_from_last_ckpt_and_returns_the_best_epoch_s_checkpoint(tmp_path):
    best = SimpleNamespace(best_model_path=str(tmp_path / "checkpoints" / "best.ckpt"))
    fresh, resumed = FakeTrainer(), FakeTrainer()
    returned = runs_fit(fresh, best, None, None, tmp_path, 3, RunPlan(resume=False), "zfnet")
    assert returned == tmp_path / "checkpoints" / "best.ckpt"
    runs_fit(resumed, best, None, None, tmp_path, 3, RunPlan(resume=True), "zfnet")
    assert fresh.calls == [None] and resumed.calls == [tmp_path / "checkpoints" / "last.ckpt"]


def test_a_non_finite_loss_names_the_last_good_checkpoint(tmp_path):
    def fails():
        return runs_fit(FakeTrainer(NonFiniteLoss("loss nan at step 3")), None, None, None, tmp_path, 3,
                        RunPlan(resume=False), "zfnet")

    with pytest.raises(NonFiniteLoss, match=r"^loss nan at step 3; no checkpoint was written yet$"):
        fails()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(NonFiniteLoss, match=f"^loss nan at step 3; the last good checkpoint is {tmp_path}/checkpoints"):
        fails()
