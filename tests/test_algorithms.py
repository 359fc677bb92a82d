"""Loss and advantage math against hand-computed cases, values and gradients."""

import math
from types import SimpleNamespace

import pytest
import torch

from embodied.algorithms import get_advantage, get_loss
from embodied.algorithms.losses import clipped_surrogate, kl_k3, reduce_logprob


def test_gae_matches_hand_computed_case_with_termination_and_truncation():
    gamma, lam = 0.9, 0.8
    # One env, 4 steps: terminated at t=1; truncated at t=3 (its bootstrap is already in the reward).
    rewards = torch.tensor([[1.0], [2.0], [0.5], [1.5]])
    values = torch.tensor([[0.5], [1.0], [0.2], [0.4]])
    next_values = torch.tensor([[1.0], [9.9], [0.4], [7.7]])  # values of the next episode: must be ignored
    ended = torch.tensor([[False], [True], [False], [True]])
    adv, ret = get_advantage("gae")(rewards, values, next_values, ended, gamma=gamma, lam=lam)
    d3 = 1.5 - 0.4
    d2 = 0.5 + gamma * 0.4 - 0.2
    d1 = 2.0 - 1.0
    d0 = 1.0 + gamma * 1.0 - 0.5
    expected = [d0 + gamma * lam * d1, d1, d2 + gamma * lam * d3, d3]
    assert torch.allclose(adv.flatten(), torch.tensor(expected))
    assert torch.allclose(ret, adv + values)


def test_group_normalisation():
    returns = torch.tensor([1.0, 3.0, 0.0, 0.0, 5.0, 5.0, 5.0, 9.0])
    adv = get_advantage("grpo")(returns, group_size=4)
    g1 = torch.tensor([1.0, 3.0, 0.0, 0.0])
    expected1 = (g1 - 1.0) / (g1.std(unbiased=False) + 1e-6)
    assert torch.allclose(adv[:4], expected1)
    assert torch.allclose(adv[4:].sum(), torch.tensor(0.0), atol=1e-5)
    assert adv[7] > 0 and (adv[4:7] < 0).all()
    with pytest.raises(AssertionError):
        get_advantage("grpo")(torch.zeros(6), group_size=4)


def test_clipped_surrogate_values_and_dual_clip():
    ratio = torch.tensor([0.5, 1.5, 1.1, 5.0])
    adv = torch.tensor([1.0, 1.0, -1.0, -2.0])
    loss = clipped_surrogate(ratio, adv, clip_low=0.2, clip_high=0.3, dual_clip=None)
    # max(-A r, -A clip(r)): [max(-0.5,-0.8), max(-1.5,-1.3), max(1.1,1.1), max(10, 2.6)]
    assert torch.allclose(loss, torch.tensor([-0.5, -1.3, 1.1, 10.0]))
    dual = clipped_surrogate(ratio, adv, clip_low=0.2, clip_high=0.3, dual_clip=3.0)
    assert torch.allclose(dual, torch.tensor([-0.5, -1.3, 1.1, 6.0]))  # -A * c = 6 caps the last one


def test_kl_k3_is_zero_at_equality_and_matches_formula():
    lp = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.0, -1.5])
    k3 = kl_k3(lp, ref)
    assert k3[0].item() == 0.0
    assert math.isclose(k3[1].item(), math.exp(0.5) - 0.5 - 1, rel_tol=1e-6)
    # Unbiased: E_pi[k3] equals KL(pi||ref) for Gaussians N(0,1) vs N(0.5,1) = 0.125.
    torch.manual_seed(0)
    x = torch.randn(400_000)
    pi, q = torch.distributions.Normal(0, 1), torch.distributions.Normal(0.5, 1)
    assert abs(kl_k3(pi.log_prob(x), q.log_prob(x)).mean().item() - 0.125) < 0.005


def test_logprob_granularity():
    lp = torch.arange(12.0).view(1, 2, 6)
    assert reduce_logprob(lp, "token").shape == (1, 2, 6)
    assert torch.equal(reduce_logprob(lp, "action"), torch.tensor([[15.0, 51.0]]))
    assert torch.equal(reduce_logprob(lp, "chunk"), torch.tensor([66.0]))
    with pytest.raises(ValueError, match="granularity"):
        reduce_logprob(lp, "sequence")


class TinyPolicy(torch.nn.Module):
    """A one-parameter Gaussian policy whose evaluate() the losses can differentiate."""

    def __init__(self, mean: float, value: float):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.tensor(mean))
        self.v = torch.nn.Parameter(torch.tensor(value))

    def evaluate(self, obs, action):
        dist = torch.distributions.Normal(self.mean.expand_as(action), 1.0)
        return dist.log_prob(action), dist.entropy(), self.v.expand(action.shape[0])


def _cfg(**kw):
    base = dict(logprob_granularity="action", normalize_advantages=False, clip_low=0.2, clip_high=0.2,
                dual_clip=None, value_clip=None, huber_delta=None, value_coef=0.5, entropy_coef=0.0, kl_coef=0.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_ppo_loss_value_and_gradient_on_tiny_case():
    policy = TinyPolicy(mean=0.0, value=1.0)
    action = torch.tensor([[[0.5]], [[-1.0]]])  # [B=2, T=1, A=1]
    old_lp = torch.distributions.Normal(0.0, 1.0).log_prob(action)  # ratio = 1 at the start
    batch = {"obs": {}, "action": action, "old_logprob": old_lp, "advantages": torch.tensor([2.0, -1.0]),
             "returns": torch.tensor([3.0, 0.0]), "old_values": torch.tensor([1.0, 1.0])}
    loss, stats = get_loss("ppo")(policy, batch, _cfg())
    # policy loss = mean(-A * 1) = -0.5; value loss = 0.5 * mean((1-3)^2, (1-0)^2) = 1.25
    assert math.isclose(stats["policy_loss"], -0.5, rel_tol=1e-6)
    assert math.isclose(stats["value_loss"], 1.25, rel_tol=1e-6)
    assert math.isclose(loss.item(), -0.5 + 0.5 * 1.25, rel_tol=1e-6)
    loss.backward()
    # d/dmean of -mean(A * ratio) at ratio 1 = -mean(A * (a - mean)) = -(2*0.5 + -1*-1)/2 = -1
    assert math.isclose(policy.mean.grad.item(), -1.0, rel_tol=1e-5)
    # d/dv of 0.5 * 0.5 * mean((v-R)^2) = 0.5 * mean(v - R) = 0.5 * ((1-3) + (1-0)) / 2 = -0.25
    assert math.isclose(policy.v.grad.item(), -0.25, rel_tol=1e-5)


def test_ppo_clipped_ratio_has_no_gradient():
    policy = TinyPolicy(mean=1.0, value=0.0)
    action = torch.tensor([[[1.0]]])
    old_lp = torch.distributions.Normal(0.0, 1.0).log_prob(action)  # ratio = e^0.5 = 1.65 > 1.2
    batch = {"obs": {}, "action": action, "old_logprob": old_lp, "advantages": torch.tensor([1.0]),
             "returns": torch.tensor([0.0]), "old_values": torch.tensor([0.0])}
    loss, stats = get_loss("ppo")(policy, batch, _cfg(value_coef=0.0))
    loss.backward()
    assert policy.mean.grad.item() == 0.0 and stats["clip_fraction"] == 1.0


def test_grpo_loss_with_kl_value_and_gradient():
    policy = TinyPolicy(mean=0.0, value=0.0)
    action = torch.tensor([[[0.5]], [[-0.5]]])
    old_lp = torch.distributions.Normal(0.0, 1.0).log_prob(action)
    ref_lp = torch.distributions.Normal(0.2, 1.0).log_prob(action)
    batch = {"obs": {}, "action": action, "old_logprob": old_lp, "advantages": torch.tensor([1.0, -1.0]),
             "ref_logprob": ref_lp}
    loss, stats = get_loss("grpo")(policy, batch, _cfg(kl_coef=0.1))
    expected_kl = kl_k3(old_lp.sum(-1), ref_lp.sum(-1)).mean().item()
    assert math.isclose(stats["kl_ref"], expected_kl, rel_tol=1e-6)
    assert math.isclose(loss.item(), -0.0 + 0.1 * expected_kl, abs_tol=1e-6)
    loss.backward()
    # policy part: -mean(A (a - mu)) = -(0.5 + 0.5)/2 = -0.5; KL part pulls towards the reference (mean 0.2).
    kl_grad = 0.1 * torch.mean(-(torch.exp(ref_lp - old_lp) - 1) * (action - 0.0)).item()
    assert math.isclose(policy.mean.grad.item(), -0.5 + kl_grad, rel_tol=1e-5)


@pytest.mark.parametrize("size, minibatches, expected_sizes", [(9, 2, [4, 5]), (1, 1, [1]), (10, 4, [2, 2, 2, 2, 2])])
def test_a_minibatch_remainder_of_one_sample_trains_without_nan(size, minibatches, expected_sizes):
    """9 samples in minibatches of 4 left one alone: its advantage std was NaN and so were the weights."""
    from embodied.runner.update import minibatch_indices, update_policy

    assert [len(part) for part in minibatch_indices(torch.randperm(size), size // minibatches)] == expected_sizes
    torch.manual_seed(0)
    policy = TinyPolicy(mean=0.0, value=1.0)
    action = torch.randn(size, 1, 1)
    batch = {"obs": {}, "action": action, "old_logprob": torch.distributions.Normal(0.0, 1.0).log_prob(action),
             "advantages": torch.randn(size), "returns": torch.randn(size), "old_values": torch.zeros(size)}
    cfg = _cfg(loss="ppo", normalize_advantages=True, update_epochs=2, num_minibatches=minibatches, target_kl=None,
               max_grad_norm=10.0, anchor_coef=0.0)
    stats = update_policy(policy, torch.optim.SGD(policy.parameters(), lr=0.1), batch, cfg)
    assert stats["minibatch_updates"] == 2 * len(expected_sizes)
    assert all(math.isfinite(v) for v in stats.values()), stats
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    assert policy.v.item() != 1.0  # the value head was trained


def test_value_clip_keeps_the_larger_loss_and_stops_its_gradient():
    """value_clip 0.2 around old values 1.0: v = 1.5 counts as 1.2 where that loses more (return 3), and as 1.5
    where the unclipped error is larger (return 0)."""
    policy = TinyPolicy(mean=0.0, value=1.5)
    action = torch.zeros(2, 1, 1)
    batch = {"obs": {}, "action": action, "old_logprob": torch.distributions.Normal(0.0, 1.0).log_prob(action),
             "advantages": torch.zeros(2), "returns": torch.tensor([3.0, 0.0]), "old_values": torch.tensor([1.0, 1.0])}
    loss, stats = get_loss("ppo")(policy, batch, _cfg(value_clip=0.2))
    # sample 0: max((1.5-3)^2, (1.2-3)^2) = 3.24 (clipped); sample 1: max(1.5^2, 1.2^2) = 2.25 (unclipped)
    assert math.isclose(stats["value_loss"], 0.5 * (3.24 + 2.25) / 2, rel_tol=1e-6)
    loss.backward()
    # only sample 1 carries a gradient: value_coef * 0.5 * (1/2) * 2 (v - 0) = 0.5 * 0.5 * 0.5 * 3.0
    assert math.isclose(policy.v.grad.item(), 0.375, rel_tol=1e-6)


def test_huber_value_loss_is_quadratic_near_and_linear_far_from_the_return():
    policy = TinyPolicy(mean=0.0, value=1.5)
    action = torch.zeros(2, 1, 1)
    batch = {"obs": {}, "action": action, "old_logprob": torch.distributions.Normal(0.0, 1.0).log_prob(action),
             "advantages": torch.zeros(2), "returns": torch.tensor([3.0, 1.2]), "old_values": torch.tensor([1.5, 1.5])}
    loss, stats = get_loss("ppo")(policy, batch, _cfg(huber_delta=1.0))
    # |1.5 - 3| = 1.5 > delta: 1.0 * (1.5 - 0.5) = 1.0; |1.5 - 1.2| = 0.3: 0.5 * 0.09 = 0.045
    assert math.isclose(stats["value_loss"], (1.0 + 0.045) / 2, rel_tol=1e-6)
    loss.backward()
    # d/dv: -1 (linear part, slope delta) and +0.3 (quadratic part), averaged, times value_coef 0.5
    assert math.isclose(policy.v.grad.item(), 0.5 * (-1.0 + 0.3) / 2, rel_tol=1e-6)


def test_opd_loss_rewards_the_actions_the_teacher_prefers():
    policy = TinyPolicy(mean=0.0, value=0.0)  # the student, N(0, 1)
    action = torch.tensor([[[0.5]], [[-1.0]]])
    old_lp = torch.distributions.Normal(0.0, 1.0).log_prob(action)
    teacher_lp = torch.distributions.Normal(0.5, 1.0).log_prob(action)  # the teacher, N(0.5, 1)
    batch = {"obs": {}, "action": action, "old_logprob": old_lp, "ref_logprob": teacher_lp}
    loss, stats = get_loss("opd")(policy, batch, _cfg())
    # advantages log pi_T - log pi_S: a = 0.5: -0 + 0.125 = 0.125; a = -1: -1.125 + 0.5 = -0.625 (ratio 1)
    assert math.isclose(loss.item(), -(0.125 - 0.625) / 2, rel_tol=1e-6)
    assert math.isclose(stats["reverse_kl"], (-0.125 + 0.625) / 2, rel_tol=1e-6)
    loss.backward()
    # d/dmu of -mean(A * ratio) at ratio 1 = -mean(A * (a - mu)): toward the teacher's side (mu grows)
    assert math.isclose(policy.mean.grad.item(), -(0.125 * 0.5 + 0.625 * 1.0) / 2, rel_tol=1e-6)


def test_target_kl_stops_the_epochs_once_the_policy_has_moved_that_far():
    from embodied.runner.update import update_policy

    def run(target_kl):
        torch.manual_seed(0)
        policy = TinyPolicy(mean=0.0, value=0.0)
        action = torch.randn(8, 1, 1)
        batch = {"obs": {}, "action": action, "old_logprob": torch.distributions.Normal(0.0, 1.0).log_prob(action),
                 "advantages": action.flatten(), "returns": torch.zeros(8), "old_values": torch.zeros(8)}
        cfg = _cfg(loss="ppo", update_epochs=3, num_minibatches=2, target_kl=target_kl, max_grad_norm=10.0,
                   anchor_coef=0.0)
        return update_policy(policy, torch.optim.SGD(policy.parameters(), lr=1.0), batch, cfg)

    # the first minibatch sees ratio 1 (KL 0) and steps; the second sees the moved policy and exceeds 1e-4
    stopped = run(1e-4)
    assert stopped["minibatch_updates"] == 2 and stopped["early_stopped"] == 1.0
    assert run(None)["minibatch_updates"] == 6 and run(10.0)["early_stopped"] == 0.0


def test_flow_head_log_prob_is_the_gaussian_of_the_euler_chain():
    """Velocity v(x, tau) = 0.5 x + tau c, 2 Euler steps from x = 0 at tau 1: x1 = -0.5 c, x2 = x1 - 0.5 (0.5 x1
    + 0.5 c) = -0.625 c; the chunk is Gaussian around x2 with the head's std."""
    from policies.vla.heads import FlowMatchingHead

    head = FlowMatchingHead({"steps": 2, "init_log_std": 0.0}, d_model=4, chunk=1, action_dim=2)
    with torch.no_grad():
        head.log_std.copy_(torch.tensor([-1.0, 0.0]))
    c = torch.tensor([0.8, -0.4])
    head.predict_velocity = lambda h, x, tau: 0.5 * x + tau * c
    action = torch.tensor([[[0.1, 0.5]]])  # [N=1, T=1, A=2]
    logprob, entropy = head.log_prob(torch.zeros(1, 1, 4), action)
    mean, std = -0.625 * c, torch.exp(torch.tensor([-1.0, 0.0]))
    expected = -0.5 * ((action[0, 0] - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(logprob[0, 0], expected)
    torch.testing.assert_close(entropy[0, 0], 0.5 + 0.5 * math.log(2 * math.pi) + torch.log(std))
    torch.testing.assert_close(head.mode(torch.zeros(1, 1, 4))[0, 0], mean)
