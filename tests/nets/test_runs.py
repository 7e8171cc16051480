"""A training run: the optimizer the recipe asks for, filter renormalization, the plateau lr drops across a
resume, which checkpoint is "best", and when an interrupted run may resume.

Tiny on purpose: one 8-image batch per epoch of a width-0.25 network on 64x64 inputs, through the same
`make_trainer` the train stage uses. Expected values are worked out by hand (the SGD update, the
ReduceLROnPlateau rule written out below), never read back from the code under test.
"""

import json
import logging
import os
import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfnet.nets.evaluation import MONITOR
from zfnet.nets.runs import make_trainer, mark_run, resumable, run_fingerprint
from zfnet.nets.training import Classifier

from conftest import plateau_schedule

ARCH = {"name": "zfnet", "input_size": 64, "width": 0.25, "init": "fan_in"}
TRAINER = {"accelerator": "cpu", "devices": 1, "num_nodes": 1, "strategy": "auto", "precision": "32-true",
           "deterministic": True, "benchmark": False}


@pytest.fixture(scope="module", autouse=True)
def restore_global_state():
    """Trainer(deterministic=True) turns on torch's deterministic algorithms for the whole process (and sets an
    environment variable), and training reseeds the global generator: undo all of it for the tests after these."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng, environ = torch.get_rng_state(), dict(os.environ)
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.set_rng_state(rng)
    os.environ.clear()
    os.environ.update(environ)


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


# --------------------------------------------------------------------------- resume or start over


def test_the_fingerprint_covers_settings_data_and_missing_files(tmp_path):
    data = tmp_path / "index.json"
    data.write_text('{"files": ["a.png"]}')
    run_id = run_fingerprint("lr: 0.01", [data])
    assert run_fingerprint("lr: 0.01", [data]) == run_id
    assert run_fingerprint("lr: 0.02", [data]) != run_id
    data.write_text('{"files": ["b.png"]}')
    assert run_fingerprint("lr: 0.01", [data]) != run_id
    assert run_fingerprint("lr: 0.01", [tmp_path / "gone.json"]) != run_fingerprint("lr: 0.01", [data])



def test_the_fingerprint_covers_the_training_code(tmp_path, monkeypatch):
    """Editing any module that shapes training (the recipe, the metrics, the Trainer wiring) starts over."""
    import types

    from zfnet.nets import evaluation, runs, training

    code = tmp_path / "fake_module.py"
    code.write_text("x = 1\n")
    monkeypatch.setattr(runs, "TRAINING_CODE", (*runs.TRAINING_CODE, types.SimpleNamespace(__file__=str(code))))
    before = run_fingerprint("lr: 0.01", [])
    code.write_text("x = 2\n")
    assert run_fingerprint("lr: 0.01", []) != before
    assert training in runs.TRAINING_CODE and evaluation in runs.TRAINING_CODE

def test_only_an_unfinished_run_with_the_same_fingerprint_resumes(tmp_path):
    data = tmp_path / "index.json"
    data.write_text("{}")
    out = tmp_path / "run"
    run_id = run_fingerprint("lr: 0.01", [data])
    assert not resumable(out, run_id)  # nothing there
    mark_run(out, run_id, complete=False)
    assert json.loads((out / "run.json").read_text()) == {"config": run_id, "complete": False}
    assert not resumable(out, run_id)  # killed before the first checkpoint
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"checkpoint")
    assert resumable(out, run_id)
    assert not resumable(out, run_fingerprint("lr: 0.02", [data]))  # other settings start over
    data.write_text('{"files": []}')
    assert not resumable(out, run_fingerprint("lr: 0.01", [data]))  # other data start over
    mark_run(out, run_id, complete=True)
    assert not resumable(out, run_id)  # a finished run starts over
