import pytest
import torch

from zfnet.nets.layers import LocalResponseNorm


def krizhevsky_by_hand(a: torch.Tensor, size: int, alpha_on_sum: float, beta: float, k: float) -> torch.Tensor:
    """Krizhevsky et al. (2012), Sec. 3.3, written out channel by channel: alpha multiplies the plain sum."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels - 1, c + (size - 1) // 2)
        total = sum(a[:, j] ** 2 for j in range(lo, hi + 1))
        out[:, c] = a[:, c] / (k + alpha_on_sum * total) ** beta
    return out


def test_krizhevskys_constants_in_pytorchs_convention_give_his_formula():
    torch.manual_seed(0)
    a = torch.randn(2, 9, 4, 5, dtype=torch.float64) * 30  # large enough that alpha matters
    layer = LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
    expected = krizhevsky_by_hand(a, 5, 1e-4, 0.75, 2.0)
    torch.testing.assert_close(layer(a), expected, rtol=1e-12, atol=1e-12)
    assert (layer(a) - a / 2.0**0.75).abs().max() > 1e-3  # the normalization is not negligible here


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
def test_backward_matches_finite_differences(size):
    torch.manual_seed(size)
    x = (torch.randn(2, 7, 3, 3, dtype=torch.float64) * 3).requires_grad_()
    layer = LocalResponseNorm(size=size, alpha=0.3, beta=0.75, k=1.5)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [4, 5])
def test_equals_torch_local_response_norm(channels_last, size):
    torch.manual_seed(1)
    x = torch.randn(3, 11, 6, 6) * 20
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(x)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    args = dict(size=size, alpha=5e-4, beta=0.75, k=2.0)
    y_ours, y_theirs = LocalResponseNorm(**args)(ours), torch.nn.LocalResponseNorm(**args)(theirs)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-6)
    y_ours.backward(grad)
    y_theirs.backward(grad)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_bfloat16_inputs_keep_float32_accuracy(scale):
    """A windowed sum taken as a difference of running sums would lose its digits in bfloat16."""
    torch.manual_seed(2)
    x = torch.relu(torch.randn(2, 256, 4, 4, dtype=torch.float64)) * scale
    args = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)
    expected = torch.nn.LocalResponseNorm(**args)(x)
    ours = LocalResponseNorm(**args)(x.to(torch.bfloat16))
    assert ours.dtype == torch.bfloat16
    assert (ours.double() - expected).abs().max() <= 0.02 * expected.abs().max()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6])
def test_the_window_summed_while_compiling_gives_the_same_layer(size, monkeypatch):
    """Under torch.compile the window is a sum of shifted slices (it fuses); run that branch eagerly here."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.manual_seed(size)
    x = (torch.randn(2, 7, 3, 3, dtype=torch.float64) * 3).requires_grad_()
    args = dict(size=size, alpha=0.3, beta=0.75, k=1.5)
    torch.testing.assert_close(LocalResponseNorm(**args)(x), torch.nn.LocalResponseNorm(**args)(x), rtol=1e-12,
                               atol=1e-12)
    assert torch.autograd.gradcheck(LocalResponseNorm(**args), (x,))


def test_compiles_without_a_graph_break():
    layer = LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
    explained = torch._dynamo.explain(layer)(torch.randn(2, 8, 4, 4, requires_grad=True))
    assert explained.graph_break_count == 0 and explained.graph_count == 1
