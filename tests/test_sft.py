"""SFT from LeRobot datasets and the SFT anchor inside RL updates (its gradient must reach the parameters)."""

import copy
from types import SimpleNamespace

import pytest
import torch

from embodied.algorithms.opd import OPDConfig
from embodied.algorithms.sft import SFTConfig
from embodied.config.schema import TrainConfig
from embodied.data.batches import DemoStream
from embodied.data.demos import env_features, record_expert_demos
from embodied.data.writer import LeRobotDatasetWriter
from embodied.runner.builders import build_policy
from embodied.runner.sft import SFTTrainer
from embodied.runner.trainer import Trainer
from embodied.runner.update import update_policy
from policies import make_policy
from sims import make_env


@pytest.fixture(scope="module")
def reach_demos(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("demos") / "reach")
    env = make_env(task="Reach", num_envs=16, autoreset=False)
    writer = LeRobotDatasetWriter.create(root, fps=20, features=env_features(env))
    record_expert_demos(env, writer, num_episodes=32, seed=0, progress=False)
    return root


def test_sft_on_expert_demos_learns_reach(tmp_path, reach_demos):
    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=300, sft_eval_interval=0)
    cfg.data.paths = [reach_demos]
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    trainer = SFTTrainer(cfg)
    before = trainer.run_eval(None, video=False)["success_once"]
    after = trainer.train()["success_once"]
    assert before <= 0.3 and after >= 0.9, (before, after)


def test_sft_steps_run_in_the_configured_precision(tmp_path, reach_demos, monkeypatch):
    from embodied.runner import sft

    seen = []
    step = sft.sft_step
    monkeypatch.setattr(sft, "sft_step", lambda *args: seen.append(args[-1]) or step(*args))
    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=2, sft_eval_interval=0, precision="bf16")
    cfg.data.paths = [reach_demos]
    cfg.experiment.output_dir, cfg.experiment.progress, cfg.experiment.eval_episodes = str(tmp_path), False, 2
    SFTTrainer(cfg).train()
    assert seen == ["bf16", "bf16"]


def anchor_case(reach_demos, **settings) -> tuple:
    """A Reach MLP, one demonstration batch, an RL batch of the same steps with zero advantages, and PPO settings
    (``settings`` replace the defaults)."""
    torch.manual_seed(0)
    policy = make_policy("mlp", obs_dim=25, action_dim=4, hidden=[32])
    stream = DemoStream([reach_demos], [], batch_size=16, action_horizon=1, seed=0)
    anchor_batch = next(stream)
    obs = anchor_batch["obs"]
    rl_batch = {"obs": {"state": obs["state"], "privileged": obs["privileged"]}, "action": anchor_batch["action"],
                "old_logprob": torch.zeros(16, 1, 4), "old_values": torch.zeros(16),
                "advantages": torch.zeros(16), "returns": torch.zeros(16)}
    cfg = SimpleNamespace(**{**dict(
        loss="ppo", update_epochs=1, num_minibatches=1, clip_low=0.2, clip_high=0.2, dual_clip=None, value_clip=None,
        huber_delta=None, value_coef=0.0, entropy_coef=0.0, normalize_advantages=False, target_kl=None,
        max_grad_norm=1e9, logprob_granularity="action", kl_coef=0.0, anchor_coef=0.5, anchor_fits_std=True),
        **settings})
    return policy, anchor_batch, rl_batch, cfg


def test_anchor_gradient_reaches_the_parameters(reach_demos):
    policy, anchor_batch, rl_batch, cfg = anchor_case(reach_demos)
    # zero advantages and value/entropy weights: the RL loss has no gradient, so any update is the anchor's
    expected = {n: p.detach().clone() for n, p in policy.named_parameters()}
    policy.zero_grad()
    sft_loss = policy.sft_loss(anchor_batch)
    (0.5 * sft_loss).backward()
    anchor_grad = {n: torch.zeros_like(p) if p.grad is None else p.grad.clone() for n, p in policy.named_parameters()}
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    stats = update_policy(policy, optimizer, rl_batch, cfg, anchor=iter([anchor_batch]))
    for name, param in policy.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name] - 0.1 * anchor_grad[name])
    assert stats["anchor_sft_loss"] == pytest.approx(sft_loss.item()) and stats["anchor_to_rl_loss_ratio"] > 0
    assert anchor_grad["actor.0.weight"].abs().sum() > 0 and anchor_grad["log_std"].abs().sum() > 0


def test_an_anchor_held_off_the_std_pulls_the_mean_and_leaves_the_std_to_the_rl_loss(reach_demos):
    # an entropy bonus gives the RL loss its own gradient on log_std
    policy, anchor_batch, rl_batch, cfg = anchor_case(reach_demos, entropy_coef=0.1, anchor_fits_std=False)
    rl_only, fitted = copy.deepcopy(policy), copy.deepcopy(policy)
    update_policy(policy, torch.optim.SGD(policy.parameters(), lr=0.1), rl_batch, cfg, anchor=iter([anchor_batch]))
    update_policy(rl_only, torch.optim.SGD(rl_only.parameters(), lr=0.1), rl_batch, cfg)
    update_policy(fitted, torch.optim.SGD(fitted.parameters(), lr=0.1), rl_batch, SimpleNamespace(
        **{**vars(cfg), "anchor_fits_std": True}), anchor=iter([anchor_batch]))
    torch.testing.assert_close(policy.log_std, rl_only.log_std)
    assert (policy.log_std - fitted.log_std).abs().min() > 1e-4  # a fitted anchor would have moved it
    for name, param in policy.named_parameters():
        if name != "log_std":
            torch.testing.assert_close(param, dict(fitted.named_parameters())[name])


def test_an_anchor_held_off_the_std_needs_a_policy_with_one(reach_demos):
    _, anchor_batch, rl_batch, cfg = anchor_case(reach_demos, anchor_fits_std=False)
    policy = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="algo.anchor_fits_std=true"):
        update_policy(policy, torch.optim.SGD(policy.parameters(), lr=0.1), rl_batch, cfg, anchor=iter([anchor_batch]))


def test_sft_without_data_paths_is_a_clear_error(tmp_path):
    cfg = TrainConfig()
    cfg.algo = SFTConfig()
    with pytest.raises(ValueError, match="data.paths"):
        SFTTrainer(cfg)


def test_on_policy_distillation_copies_the_teacher_without_env_reward(tmp_path, reach_demos):
    teacher_cfg = TrainConfig()
    teacher_cfg.algo = SFTConfig(sft_steps=300, sft_eval_interval=0)
    teacher_cfg.data.paths = [reach_demos]
    teacher_cfg.experiment.output_dir, teacher_cfg.experiment.progress = str(tmp_path / "teacher"), False
    assert SFTTrainer(teacher_cfg).train()["success_once"] >= 0.9
    cfg = TrainConfig()
    cfg.algo = OPDConfig(teacher=str(tmp_path / "teacher" / "final_policy"), rollout_steps=25, update_epochs=4)
    cfg.env.reward_mode = "sparse"  # the student never needs a dense reward: the teacher is the signal
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval = 16_000, 0
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "student"), False
    student = Trainer(cfg)
    before = student.run_eval(None, video=False)["success_once"]
    after = student.train()["success_once"]
    assert before <= 0.3 and after >= 0.9, (before, after)


def test_critic_warmup_moves_only_the_value_function(tmp_path, reach_demos):
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps, cfg.algo.critic_warmup_iterations = 8, 10, 1
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 80, 0, 0
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 2
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    trainer = Trainer(cfg)
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    trainer.train()  # one iteration, inside the warm-up
    moved = {n for n, p in trainer.policy.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {n for n in before if n.startswith("critic.")}


def sft_stage_config(tmp_path, reach_demos) -> TrainConfig:
    """PPO on Reach for 80 env-steps after 300 SFT steps on the expert demos (anchored to them)."""
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps = 8, 10
    cfg.algo.sft_stage_steps, cfg.algo.anchor_coef = 300, 0.1
    cfg.data.paths, cfg.data.anchor_paths = [reach_demos], [reach_demos]
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 80, 0, 0
    cfg.experiment.eval_episodes, cfg.experiment.eval_num_envs = 16, 16
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    return cfg


def test_an_rl_run_with_an_sft_stage_starts_from_the_demonstrations(tmp_path, reach_demos):
    """RL-Co stage 1 inside the RL run: the SFT'd policy is evaluated (Reach: solved) and saved before PPO."""
    trainer = Trainer(sft_stage_config(tmp_path, reach_demos))
    assert trainer.run_eval(None, video=False)["success_once"] <= 0.3
    trainer.train()
    assert trainer.stage1_metrics["success_once"] >= 0.9
    assert trainer.eval_history[1]["env_steps"] == 0 and (tmp_path / "stage1_policy" / "model.safetensors").is_file()
    assert trainer.counters["env_steps"] == 80


def test_a_run_whose_sft_stage_reaches_stop_at_success_takes_no_env_step(tmp_path, reach_demos):
    cfg = sft_stage_config(tmp_path, reach_demos)
    cfg.experiment.eval_interval, cfg.experiment.stop_at_success = 1, 0.9
    trainer = Trainer(cfg)
    trainer.train()
    assert trainer.stage1_metrics["success_once"] >= 0.9
    assert trainer.counters["env_steps"] == 0 and [e["env_steps"] for e in trainer.eval_history] == [0, 0]


def test_an_sft_stage_without_demonstrations_is_a_clear_error():
    cfg = TrainConfig()
    cfg.algo.sft_stage_steps = 10
    with pytest.raises(ValueError, match="sft_stage_steps > 0 needs data.paths"):
        Trainer(cfg)


@pytest.mark.parametrize("freeze", [False, True])
def test_frozen_observation_statistics_are_those_of_the_starting_weights(tmp_path, freeze):
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps = 8, 10
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 80, 0, 0
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 2
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "run"), False
    Trainer(cfg).policy.save_pretrained(str(tmp_path / "sft"))  # e.g. an SFT policy and its dataset statistics
    cfg.init_from, cfg.algo.freeze_normalizer = str(tmp_path / "sft"), freeze
    trainer = Trainer(cfg)
    before = trainer.policy.normalizer.mean.clone()
    trainer.train()
    assert torch.equal(trainer.policy.normalizer.mean, before) == freeze


def _record_learning_rates(monkeypatch, module, function_name, optimizer_arg):
    """Patch ``module.function_name`` to log the learning rate its optimizer argument holds on each call."""
    original, rates = getattr(module, function_name), []

    def logged(*args, **kwargs):
        rates.append(args[optimizer_arg].param_groups[0]["lr"])
        return original(*args, **kwargs)
    monkeypatch.setattr(module, function_name, logged)
    return rates


def test_anneal_lr_decays_the_sft_learning_rate_linearly_to_zero(tmp_path, reach_demos, monkeypatch):
    import embodied.runner.sft as sft_module
    rates = _record_learning_rates(monkeypatch, sft_module, "sft_step", optimizer_arg=1)
    cfg = TrainConfig()
    cfg.algo = SFTConfig(sft_steps=4, sft_eval_interval=0, anneal_lr=True)
    cfg.algo.learning_rate, cfg.data.paths = 1e-3, [reach_demos]
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 2
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    SFTTrainer(cfg).train()
    assert rates == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])


def test_anneal_lr_decays_the_rl_learning_rate_per_iteration(tmp_path, monkeypatch):
    import embodied.runner.trainer as trainer_module
    rates = _record_learning_rates(monkeypatch, trainer_module, "update_policy", optimizer_arg=1)
    cfg = TrainConfig()
    cfg.env.num_envs, cfg.algo.rollout_steps, cfg.algo.anneal_lr, cfg.algo.learning_rate = 8, 10, True, 2e-3
    cfg.experiment.total_env_steps, cfg.experiment.eval_interval, cfg.experiment.checkpoint_interval = 160, 0, 0
    cfg.experiment.eval_episodes = cfg.experiment.eval_num_envs = 2
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path), False
    Trainer(cfg).train()  # two iterations of 80 env-steps
    assert rates == pytest.approx([2e-3, 1e-3])


def _tiny_vla_config(cfg: TrainConfig) -> None:
    cfg.policy.name, cfg.policy.cameras = "vla", ["front"]
    cfg.policy.vision = {"name": "tiny", "freeze": True}
    cfg.policy.language = {"name": "tiny", "freeze": True}


@pytest.mark.parametrize("student", ["mlp", "vla"])
def test_on_policy_distillation_scores_with_the_teachers_own_inputs(tmp_path, student):
    """A camera VLA teacher reads its own camera and its own frozen-tower features, whatever the student stores
    in its rollouts (an MLP student keeps only state vectors; a frozen-tower VLA student caches its own tokens)."""
    teacher_cfg = TrainConfig()
    _tiny_vla_config(teacher_cfg)
    teacher_cfg.env.cameras, teacher_cfg.experiment.output_dir = ["front"], str(tmp_path / "teacher_run")
    env = make_env(task="Reach", num_envs=4, cameras=("front",), autoreset=True)
    torch.manual_seed(5)
    teacher = build_policy(teacher_cfg, env, seed=5)
    teacher.save_pretrained(str(tmp_path / "teacher"))
    cfg = TrainConfig()
    if student == "vla":
        _tiny_vla_config(cfg)
    cfg.algo = OPDConfig(teacher=str(tmp_path / "teacher"), rollout_steps=3, update_epochs=1)
    cfg.env.num_envs, cfg.env.cameras = 4, ["front"]
    cfg.experiment.output_dir, cfg.experiment.progress = str(tmp_path / "student"), False
    trainer = Trainer(cfg)
    raw_steps, store = [], trainer.policy.cache_features
    trainer.policy.cache_features = lambda obs: (raw_steps.append(obs), store(obs))[1]
    batch, _ = trainer.collector.collect()
    scored = []
    evaluate = trainer.reference.evaluate
    trainer.reference.evaluate = lambda obs, action: (scored.append(evaluate(obs, action)[0]), evaluate(obs, action))[1]
    update_policy(trainer.policy, trainer.optimizer, batch, cfg.algo, trainer.reference)
    actions = batch["action"].view(len(raw_steps), 4, *batch["action"].shape[1:])  # [S, N, T, A], step-major rows
    with torch.no_grad():
        expected = torch.cat([evaluate(teacher.cache_features(raw), action)[0]
                              for raw, action in zip(raw_steps, actions)])
    torch.testing.assert_close(torch.cat(scored), expected)
    if student == "vla":  # the two frozen towers differ, so reading the student's cached tokens would show
        student_tokens = store(raw_steps[0])["vision_tokens"]
        assert not torch.allclose(student_tokens, teacher.cache_features(raw_steps[0])["vision_tokens"])


def test_a_teacher_reading_a_camera_the_env_does_not_render_is_named(tmp_path):
    teacher_cfg = TrainConfig()
    _tiny_vla_config(teacher_cfg)
    teacher_cfg.env.cameras = ["front"]
    env = make_env(task="Reach", num_envs=2, cameras=("front",), autoreset=True)
    build_policy(teacher_cfg, env, seed=0).save_pretrained(str(tmp_path / "teacher"))
    cfg = TrainConfig()
    cfg.algo = OPDConfig(teacher=str(tmp_path / "teacher"))
    cfg.experiment.output_dir = str(tmp_path / "student")
    with pytest.raises(ValueError, match=r"reads cameras \['front'\].*set env.cameras=\['front'\]"):
        Trainer(cfg)
