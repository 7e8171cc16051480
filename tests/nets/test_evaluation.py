"""The reported numbers: top-k error, the 10-crop test and the Table 2/3 summary of a run.

Expected values are counted by hand or computed with torchvision's ten_crop and plain torch ops.
"""

import pytest
import torch
import torchvision.transforms.functional as TF
from torch import nn
from torch.utils.data import TensorDataset, default_collate

from zfnet.nets.evaluation import collate_images, run_metrics, ten_crop_errors, ten_crop_evidence, ten_crop_result
from zfnet.nets.training import Classifier, TopKError


def test_top_k_error_is_the_share_of_misses_over_all_updates():
    first = torch.tensor([[9., 1, 2, 3], [1, 9, 2, 3], [3, 2, 9, 1], [2, 3, 1, 9]])
    first_labels = torch.tensor([0, 2, 3, 1])  # the label's logit ranks 1st, 3rd, 4th, 2nd
    second = torch.tensor([[0., 5, 1, 2], [4, 3, 2, 1]])
    second_labels = torch.tensor([1, 3])  # 1st, 4th
    # ranks 1, 3, 4, 2, 1, 4: outside the top 1: four of six; top 2: three; top 3: two
    for k, expected in [(1, 4 / 6), (2, 3 / 6), (3, 2 / 6), (4, 0.0)]:
        metric = TopKError(top_k=k)
        metric.update(first, first_labels)
        metric.update(second, second_labels)
        assert metric.compute().item() == pytest.approx(expected), k


class Lookup(nn.Module):
    """A stand-in for a Classifier: image i (every pixel = i) gets the logits `table[i]`, whatever the crop."""

    def __init__(self, table):
        super().__init__()
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32))

    def normalize(self, images):
        return images.float()

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def test_ten_crop_top5_misses_only_when_the_label_is_outside_the_five():
    logits = torch.arange(7, 0, -1).float().expand(5, 7)  # class c has rank c + 1 for every image
    labels = torch.tensor([0, 1, 4, 5, 6])  # ranks 1, 2, 5, 6, 7
    images = torch.arange(5, dtype=torch.uint8)[:, None, None, None].expand(5, 3, 10, 10).contiguous()
    top1, top5 = ten_crop_errors(Lookup(logits), TensorDataset(images, labels), crop=8, batch_size=2)
    assert top1 == pytest.approx(4 / 5)  # all but rank 1
    assert top5 == pytest.approx(2 / 5)  # ranks 6 and 7


@pytest.mark.parametrize("workers", [0, 2])
def test_ten_crop_errors_of_a_classifier_match_torchvision(workers):
    """The Classifier's own normalization (mean image, input scale) then torchvision's ten crops; the same
    with the images read by worker processes."""
    size, crop, classes = 72, 64, 10
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mean = torch.rand(3, size, size) * 255
        module = Classifier({"name": "zfnet", "input_size": crop, "width": 0.25, "init": "fan_in"}, classes, mean,
                            crop, input_scale=0.02)
        images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)
    network = module.model.eval()
    with torch.no_grad():
        probabilities = torch.stack([
            network(torch.stack(TF.ten_crop((image.float() - mean) * 0.02, [crop, crop]))).softmax(1).mean(0)
            for image in images])
    order = probabilities.argsort(dim=1, descending=True)
    assert probabilities.sort(dim=1).values.diff(dim=1).min() > 1e-6  # no near ties: the ranking is not rounding
    ranks = [0, 4, 5]  # 0-based rank of each image's label among the averaged probabilities
    labels = torch.tensor([int(order[i, r]) for i, r in enumerate(ranks)])
    top1, top5 = ten_crop_errors(module, TensorDataset(images, labels), crop, batch_size=2, num_workers=workers)
    assert top1 == pytest.approx(2 / 3) and top5 == pytest.approx(1 / 3)


def test_collated_images_are_the_default_collation_s_tensors():
    """Items as PreparedSplit gives them (CHW views of HWC arrays) or contiguous: the same pixels, in the same
    contiguous channels-first memory, and the same labels as torch's default_collate."""
    stored = torch.randint(0, 256, (4, 9, 7, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for items in ([(image.permute(2, 0, 1), label) for label, image in enumerate(stored)],
                  [(image.permute(2, 0, 1).contiguous(), torch.tensor(label)) for label, image in enumerate(stored)]):
        images, labels = collate_images(items)
        expected_images, expected_labels = default_collate(items)
        assert torch.equal(images, expected_images) and images.stride() == expected_images.stride()
        assert torch.equal(labels, expected_labels) and labels.dtype == expected_labels.dtype


def test_run_metrics_reports_the_best_epoch_and_the_last_train_error():
    history = [
        {"epoch": 1, "val/top1_error": 0.6, "val/top5_error": 0.3, "train/top1_error": 0.7},
        {"epoch": 2, "val/top1_error": 0.4, "val/top5_error": 0.2, "train/top1_error": 0.5},
        {"epoch": 3, "val/top1_error": 0.5, "val/top5_error": 0.1, "train/top1_error": 0.3},
        {"epoch": 4, "val/top1_error": 0.4, "val/top5_error": 0.05, "train/top1_error": 0.2},  # a tie: not better
    ]
    assert run_metrics(history, (0.35, 0.15)) == {
        "val_top1_error_10crop": 0.35, "val_top5_error_10crop": 0.15, "val_top1_error": 0.4, "val_top5_error": 0.2,
        "train_top1_error": 0.2, "best_epoch": 2, "epochs": 4}


def test_ten_crop_evidence_holds_each_image_s_hits_as_0_or_1_in_order():
    top1, top5 = torch.tensor([True, False, False]), torch.tensor([True, True, False])
    evidence = ten_crop_evidence((top1, top5))
    assert evidence["images"] == 3
    assert evidence["top1_correct"].tolist() == [1, 0, 0] and evidence["top5_correct"].tolist() == [1, 1, 0]


def test_the_ten_crop_result_is_scored_with_the_checkpoint_s_weights_not_the_module_s(tmp_path):
    """The checkpoint's last layer has zero weights and a bias that ranks class 3 first, 4 second, ...: every crop
    of every image gets that ranking, so the hits follow from the labels' ranks alone. The module held other
    weights before; the history's best epoch and last train error come along."""
    size, crop, classes = 72, 64, 10
    module = Classifier({"name": "zfnet", "input_size": crop, "width": 0.25, "init": "fan_in"}, classes,
                        torch.zeros(3, size, size), crop, input_scale=0.02)
    module.history = [{"epoch": 1, "val/top1_error": 0.5, "val/top5_error": 0.25, "train/top1_error": 0.75}]
    saved = {k: v.clone() for k, v in module.state_dict().items()}
    saved["model.classifier.fc8.weight"].zero_()
    saved["model.classifier.fc8.bias"] = torch.arange(classes, 0, -1).float().roll(3)  # class 3 ranks first
    torch.save({"state_dict": saved}, tmp_path / "best.ckpt")
    images = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([3, 4, 8, 2])   # ranks 1, 2, 6, 10
    metrics, hits = ten_crop_result(module, tmp_path / "best.ckpt", TensorDataset(images, labels))
    assert hits[0].tolist() == [True, False, False, False] and hits[1].tolist() == [True, True, False, False]
    parameters = sum(v.numel() for k, v in saved.items() if k.startswith("model."))   # the network's, not the mean
    assert metrics == {"val_top1_error_10crop": 0.75, "val_top5_error_10crop": 0.5, "val_top1_error": 0.5,
                       "val_top5_error": 0.25, "train_top1_error": 0.75, "best_epoch": 1, "epochs": 1,
                       "classes": classes, "parameters": parameters}
