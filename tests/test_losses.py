import math

import torch

from ganforge import losses


def sp(x):
    return math.log1p(math.exp(x))


REAL = torch.tensor([2.0, -1.0])
FAKE = torch.tensor([0.5, -3.0])


def test_discriminator_losses_match_hand_computed_values():
    expected = {
        "nonsaturating": (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2,
        "minimax": (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2,
        "hinge": (max(0, 1 - 2.0) + max(0, 1 + 1.0)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3.0)) / 2,
        "wasserstein": (0.5 - 3.0) / 2 - (2.0 - 1.0) / 2,
        "least-squares": 0.5 * (((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + (0.5 ** 2 + 9.0) / 2),
    }
    for kind, value in expected.items():
        assert math.isclose(losses.discriminator_loss(kind, REAL, FAKE).item(), value, rel_tol=1e-6), kind


def test_generator_losses_match_hand_computed_values():
    expected = {
        "nonsaturating": (sp(-0.5) + sp(3.0)) / 2,
        "minimax": -(sp(0.5) + sp(-3.0)) / 2,
        "hinge": -(0.5 - 3.0) / 2,
        "wasserstein": -(0.5 - 3.0) / 2,
        "least-squares": 0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2,
    }
    for kind, value in expected.items():
        assert math.isclose(losses.generator_loss(kind, FAKE).item(), value, rel_tol=1e-6), kind


def test_gradient_penalty_of_linear_critic_is_hand_computed():
    # D(x) = sum(w * x): its gradient is w everywhere, so the penalty is (||w|| - 1)^2 whatever the mixing.
    w = torch.tensor([[[[3.0, 4.0]]]])  # ||w|| = 5
    real, fake = torch.randn(4, 1, 1, 2), torch.randn(4, 1, 1, 2)
    penalty = losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    assert math.isclose(penalty.item(), 16.0, rel_tol=1e-6)


def test_gradient_penalty_uses_one_weight_per_sample_and_full_norm():
    # D(x) = sum(x^2)/2 has gradient x; with real = 0 the mixed point is alpha * fake, one alpha per sample.
    torch.manual_seed(0)
    fake = torch.randn(5, 2, 3, 3)
    real = torch.zeros_like(fake)
    torch.manual_seed(1)
    penalty = losses.gradient_penalty(lambda x: 0.5 * x.square().flatten(1).sum(1), real, fake)
    torch.manual_seed(1)
    alpha = torch.rand(5, 1, 1, 1)
    norms = (alpha * fake).flatten(1).norm(dim=1)
    assert math.isclose(penalty.item(), ((norms - 1) ** 2).mean().item(), rel_tol=1e-5)


def test_r1_penalty_is_squared_gradient_norm():
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = (2.0 * x).flatten(1).sum(1)  # gradient 2 everywhere: squared norm 4 * 4 = 16
    assert math.isclose(losses.r1_penalty(logits, x).item(), 16.0, rel_tol=1e-6)


def test_penalties_give_gradients_to_the_critic():
    w = torch.tensor(2.0, requires_grad=True)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    penalty = losses.gradient_penalty(lambda x: w * x.flatten(1).sum(1), real, fake)
    penalty.backward()
    assert w.grad is not None and w.grad.abs().item() > 0
