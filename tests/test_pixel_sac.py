"""The pixel actor of off-policy RL (policy=pixel_tanh): its encoder trained by the critics' loss alone, one encoding
per image batch and update, DrQ's shifts in updates only, its refusals, and RLPD's wiring from uint8 images."""

import pytest
import torch

from policies.pixel_tanh import PixelTanhPolicy
from tests.test_training import config

VISION = {"name": "keypoints", "channels": 4, "keypoints": 4}


def pixel_policy(random_shift: int = 2) -> PixelTanhPolicy:
    """A small pixel actor: 3 state dims, 2 actions, one 4-keypoint camera."""
    torch.manual_seed(0)
    return PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "cameras": ["front"], "vision": VISION,
                            "random_shift": random_shift, "hidden": [16]})


def observations(n: int = 6) -> dict:
    """``n`` random states and 16x16 uint8 front images."""
    g = torch.Generator().manual_seed(1)
    return {"state": torch.randn(n, 3, generator=g),
            "rgb": {"front": torch.randint(0, 256, (n, 16, 16, 3), generator=g, dtype=torch.uint8)}}


def encoder_grad(policy) -> float:
    """Summed absolute gradient on the image encoder's parameters."""
    return sum(p.grad.abs().sum().item() for p in policy.encoder_parameters() if p.grad is not None)


def test_the_critics_features_train_the_encoder_and_the_actors_loss_does_not():
    policy, obs = pixel_policy(), observations()
    assert policy.features(obs).shape == (6, 3 + 2 * 4) and policy.feature_dim == 11
    policy.features(obs).pow(2).sum().backward()  # what the critics' loss does through Q(features, a)
    assert encoder_grad(policy) > 0
    policy.zero_grad()
    action, logprob = policy.rsample(obs)
    (action.sum() + logprob.sum() + policy.deterministic_action(obs).sum()).backward()
    assert encoder_grad(policy) == 0  # the actor reads the keypoints detached
    assert policy.actor[0].weight.grad.abs().sum() > 0


def test_inside_reuse_encodings_each_image_batch_is_encoded_once_per_grad_mode():
    policy, obs = pixel_policy(), observations()
    calls = []
    policy.encoders["front"].register_forward_hook(lambda *_: calls.append(1))
    expected = policy.features(obs)
    with policy.reuse_encodings():
        with torch.no_grad():
            policy.features(obs)  # encoded without gradients: cannot serve the critics' loss
        first = policy.features(obs)
        policy.actor_features(obs), policy.rsample(obs), policy.features(obs)
        policy.features(observations(6))  # equal images, another batch: encoded again
    assert len(calls) == 1 + 3
    torch.testing.assert_close(first, expected)
    first.sum().backward()  # the cached keypoints keep the encoder's graph
    assert encoder_grad(policy) > 0
    policy.features(obs), policy.features(obs)
    assert len(calls) == 4 + 2  # outside the block, nothing is kept


def test_updates_see_shifted_images_and_acting_sees_them_as_rendered():
    policy, obs = pixel_policy(random_shift=2), observations(64)
    shifted = policy.augment(obs)
    assert shifted["state"] is obs["state"]
    moved = (shifted["rgb"]["front"] != obs["rgb"]["front"]).flatten(1).any(1)
    assert moved.float().mean() > 0.8  # 24 of 25 shifts move an image
    # inside the pad, a shifted image is the original moved by at most 2 pixels: some shift in [-2, 2]^2 matches it
    image, original = shifted["rgb"]["front"][0].long(), obs["rgb"]["front"][0].long()
    assert any((image[2:-2, 2:-2] == original[2 + dy:14 + dy, 2 + dx:14 + dx]).all()
               for dy in range(-2, 3) for dx in range(-2, 3))
    torch.testing.assert_close(policy.features(obs), policy.features(obs))  # features never shift
    assert pixel_policy(random_shift=0).augment(obs) is obs


def test_pixel_policy_refusals_name_the_setting_and_the_fix():
    from sims.api import ActionSpec, ObservationSpec

    with pytest.raises(ValueError, match=r"needs the env's task state, but the env has none \(privileged_dim=0\)"):
        PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "vision": VISION, "aux_state_coef": 1.0})
    with pytest.raises(ValueError, match=r"policy.aux_state_coef must be > 0 \(0 turns the head off\), got -1.0"):
        PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "vision": VISION, "aux_state_coef": -1.0,
                         "privileged_dim": 5})
    with pytest.raises(ValueError, match=r"0 <= first < stop <= 5"):
        PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "vision": VISION, "aux_state_coef": 1.0,
                         "privileged_dim": 5, "aux_state_dims": [3, 9]})
    with pytest.raises(ValueError, match="aux_state_coef=0 turns off"):
        PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "vision": VISION, "aux_state_dims": [0, 2]})
    with pytest.raises(ValueError, match="name: keypoints"):
        PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "vision": {"name": "tiny"}})
    BOX = ActionSpec(dim=2, low=-1.0, high=1.0, names=("x", "y"))
    spec = ObservationSpec(state_dim=3, privileged_dim=2, cameras=("wrist",), image_height=16, image_width=16)
    with pytest.raises(ValueError, match=r"env.cameras=\['front', 'wrist'\]"):
        PixelTanhPolicy.for_env({"cameras": ["front"]}, spec, BOX, {})
    with pytest.raises(ValueError, match="obs_keys"):
        PixelTanhPolicy.for_env({"cameras": ["wrist"], "obs_keys": ["state", "privileged"]}, spec,
                                BOX, {})


def test_sft_clones_tanh_of_the_mean_and_trains_the_encoder_with_the_task_state_head():
    policy = PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "cameras": ["front"], "vision": VISION, "hidden": [16],
                              "random_shift": 0, "aux_state_coef": 2.0, "privileged_dim": 5, "aux_state_dims": [1, 3]})
    with torch.no_grad():
        policy.task_state_mean.copy_(torch.arange(5.0))
        policy.task_state_std.copy_(torch.full((5,), 2.0))
    obs = observations() | {"privileged": torch.randn(6, 5, generator=torch.Generator().manual_seed(2))}
    action = torch.rand(6, 1, 2, generator=torch.Generator().manual_seed(3)) * 2 - 1
    padded = torch.tensor([[False]] * 5 + [[True]])  # the last row is past its episode's end
    loss = policy.sft_loss({"obs": obs, "action": action, "action_is_pad": padded})
    with torch.no_grad():  # by hand: tanh of the actor's mean, and the head on the 8 keypoint coordinates
        features = policy.features(obs)
        cloned = ((torch.tanh(policy.actor(features)[:, :2]) - action[:, 0]) ** 2).sum(-1)  # [6]
        cloned[5] = 0.0
        z = (obs["privileged"] - torch.arange(5.0)) / 2.0
        state = ((policy.task_state_head(features[:, 3:]) - z)[:, 1:3] ** 2).mean()
    torch.testing.assert_close(loss, cloned.mean() + 2.0 * state)
    loss.backward()
    assert encoder_grad(policy) > 0 and policy.task_state_head[0].weight.grad.abs().sum() > 0
    assert policy.actor[0].weight.grad.abs().sum() > 0


def test_a_frozen_encoder_keeps_its_keypoints_and_init_from_drops_the_sft_head(tmp_path):
    from embodied.runner.trainer import load_initial_weights

    sft = PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "cameras": ["front"], "vision": VISION, "hidden": [16],
                           "aux_state_coef": 1.0, "privileged_dim": 4})
    sft.save_pretrained(str(tmp_path / "sft"))
    rl = PixelTanhPolicy({"state_dim": 3, "action_dim": 2, "cameras": ["front"], "hidden": [16],
                          "vision": VISION | {"freeze": True}})
    load_initial_weights(rl, str(tmp_path / "sft"))  # the head's weights are left behind, the rest copied
    obs = observations()
    torch.testing.assert_close(rl.features(obs), sft.features(obs))
    assert rl.encoder_parameters() == [] and not hasattr(rl, "task_state_head")
    with rl.reuse_encodings():  # as in an update: the critics' loss reaches no encoder weight
        assert not rl.features(obs).requires_grad
    stored = rl.cache_features(obs)  # the replay buffer keeps the frozen keypoints, not the images
    assert sorted(stored) == ["keypoints", "state"] and stored["keypoints"].shape == (6, 8)
    assert rl.augment(stored) is stored
    torch.testing.assert_close(rl.features(stored), rl.features(obs))


def test_rl_from_a_frozen_pixel_start_stores_keypoints_and_updates_without_images(tmp_path):
    from embodied.runner.offpolicy import OffPolicyTrainer

    cfg = config(tmp_path, algo__name="rlpd", policy__name="pixel_tanh", policy__obs_keys=["state"],
                 policy__vision=VISION | {"freeze": True}, env__cameras=["front"], env__image_size=[16, 16],
                 env__num_envs=4, algo__demo_episodes=2, algo__batch_size=16, algo__learning_starts=0,
                 algo__rollout_steps=3)
    trainer = OffPolicyTrainer(cfg)
    assert trainer._identity()["policy.vision.freeze"]  # resuming with a trainable encoder is refused by name
    encoder = [p.detach().clone() for p in trainer.policy.encoders.parameters()]
    trainer._collect_and_learn()
    for buffer in (trainer.buffer, trainer.demos):
        assert "obs/keypoints" in buffer.store and not any(k.startswith("obs/rgb") for k in buffer.store)
    assert trainer.counters["updates"] > 0
    assert all(torch.equal(b, p) for b, p in zip(encoder, trainer.policy.encoders.parameters()))


def test_rlpd_from_pixels_stores_uint8_images_and_steps_the_encoder_with_the_critics(tmp_path):
    from embodied.runner.offpolicy import OffPolicyTrainer

    cfg = config(tmp_path, algo__name="rlpd", policy__name="pixel_tanh", policy__obs_keys=["state"],
                 policy__vision=VISION, policy__random_shift=2, env__cameras=["front"], env__image_size=[16, 16],
                 env__num_envs=4, algo__demo_episodes=2, algo__batch_size=16, algo__learning_starts=0,
                 algo__rollout_steps=3)
    trainer = OffPolicyTrainer(cfg)
    encoder = {id(p) for p in trainer.policy.encoder_parameters()}
    assert encoder <= {id(p) for p in trainer.critic_optimizer.param_groups[0]["params"]}
    assert not encoder & {id(p) for p in trainer.actor_optimizer.param_groups[0]["params"]}
    assert trainer.demos.store["obs/rgb/front"].dtype == torch.uint8
    before = [p.detach().clone() for p in trainer.policy.encoder_parameters()]
    trainer._collect_and_learn()
    assert trainer.buffer.store["obs/rgb/front"].shape[1:] == (4, 16, 16, 3)
    assert trainer.counters["updates"] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.policy.encoder_parameters()))


# ----------------------------------------------------------------------------------- residual_tanh (chunked bases)
def residual_tanh_over(base: str, env, obs, **config):
    """``policy=residual_tanh`` (scale 0.5) over the saved ``base``, sized for ``env``."""
    from policies.residual_tanh import ResidualTanhPolicy

    return ResidualTanhPolicy.for_env({"base": base, "residual_scale": 0.5, **config}, env.observation_spec,
                                      env.action_spec, obs)


def test_residual_tanh_log_prob_is_the_corrections_squashed_gaussian_density(tmp_path):
    from sims import make_env
    from tests.test_residual import saved_mlp_base

    env = make_env(task="PickCube", num_envs=4)
    obs, _ = env.reset(seed=0)
    policy = residual_tanh_over(saved_mlp_base(tmp_path, env, obs, chunk_size=4), env, obs)
    base = policy.base.deterministic_action(obs)[:, 0]  # [N, A], the first action of the base's chunk
    torch.testing.assert_close(policy.deterministic_action(obs)[:, 0], base, rtol=0, atol=0)  # zero correction
    with torch.no_grad():
        policy.actor[-1].weight.normal_(0, 0.3)  # a correction that is not zero
    torch.manual_seed(3)
    action, logprob = policy.rsample(obs)
    # torch's own density of the correction tanh(u) = (a - base) / 0.5, u ~ N(mean, std), in its [-1, 1] units
    mean, raw = policy.actor(policy.features(obs)).chunk(2, dim=-1)
    std = torch.exp(-5.0 + 3.5 * (torch.tanh(raw) + 1))
    reference = torch.distributions.TransformedDistribution(torch.distributions.Normal(mean, std),
                                                            [torch.distributions.TanhTransform()])
    correction = (action[:, 0] - base) / 0.5
    torch.testing.assert_close(logprob, reference.log_prob(correction).sum(-1), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(policy.evaluate(obs, action)[0].sum(dim=(1, 2)), logprob, rtol=1e-4, atol=1e-3)
    assert ((action[:, 0] - base).abs() < 0.5).all() and (action[:, 0] - base).abs().max() > 0.05


def test_evaluation_and_resume_keep_the_base_chunk_a_training_rollout_is_executing(tmp_path):
    from embodied.algorithms.sac import SACConfig
    from embodied.rollout.evaluate import evaluate
    from embodied.rollout.transition_collector import TransitionCollector
    from sims import make_env
    from tests.test_residual import saved_mlp_base

    env = make_env(task="PickCube", num_envs=4, autoreset=True)
    obs, _ = env.reset(seed=0)
    policy = residual_tanh_over(saved_mlp_base(tmp_path, env, obs, chunk_size=4), env, obs)
    collector = TransitionCollector(env, policy, SACConfig(learning_starts=0))
    collector.start(seed=0)
    for _ in range(2):  # into the first base chunk
        collector.step(policy.rsample(collector.obs)[0][:, 0].detach())
    chunk, base_action = policy.acting_state()["base_chunk"], collector.obs["base_action"]
    evaluate(policy, make_env(task="PickCube", num_envs=3, autoreset=False), num_episodes=3, seed=5)
    assert torch.equal(policy.acting_state()["base_chunk"], chunk)  # evaluation set it aside and gave it back
    state = collector.state_dict()
    policy.reset()  # a resumed process starts without a chunk
    collector.load_state_dict(state)
    torch.testing.assert_close(collector.obs["base_action"], base_action, rtol=0, atol=0)  # step 2 of the same chunk


def test_rlpd_over_a_chunked_vla_base_stores_one_base_action_per_step_and_no_images(tmp_path):
    from embodied.runner.offpolicy import OffPolicyTrainer
    from sims import make_env
    from tests.test_residual import saved_tiny_vla

    env = make_env(task="PickCube", num_envs=2, cameras=("front",), image_size=(16, 16))
    saved_tiny_vla(str(tmp_path / "vla"), env.reset(seed=0)[0], head="gaussian")
    cfg = config(tmp_path / "run", algo__name="rlpd", policy__name="residual_tanh", policy__residual_scale=0.5,
                 env__task="PickCube", env__cameras=["front"], env__image_size=[16, 16], env__num_envs=4,
                 algo__demo_episodes=2, algo__batch_size=16, algo__learning_starts=16, algo__rollout_steps=8)
    cfg.base = str(tmp_path / "vla")
    trainer = OffPolicyTrainer(cfg)
    calls = []
    original = trainer.policy.base.deterministic_action
    trainer.policy.base.deterministic_action = lambda o: calls.append(1) or original(o)
    trainer._collect_and_learn()
    assert sorted(k for k in trainer.buffer.store if k.startswith("obs/")) == \
        ["obs/base_action", "obs/privileged", "obs/state"]  # no camera images, no instructions
    # the base replans every 4 steps, once for acting and storing, never in the updates
    assert len(calls) == 2 and trainer.counters["updates"] > 0
    stored = trainer.buffer.store["obs/base_action"][:8]  # [8 steps, 4 envs, A]
    assert not torch.equal(stored[0], stored[1])  # the chunk's actions, one per step
    # the base acts from the first step: within residual_scale of it, not uniform random actions, before learning_starts
    assert ((trainer.buffer.store["action"][:8] - stored).abs() <= 0.5 + 1e-6).all()
