"""Pixel-VLA RL: PPO from a pixel SFT start raises success on Reach by more than chance could."""

import pytest


@pytest.mark.slow
def test_pixel_ppo_from_an_sft_start_raises_reach_success_beyond_chance(tmp_path):
    """policy=vla (keypoints trained, front and wrist cameras at 32 px) after a short SFT on 64 expert demos, then
    PPO with the SFT anchor on the action mean and the privileged critic: success over the same 128 evaluation
    episodes rises by at least 20 points."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from embodied.cli.train import _config_path
    from embodied.data.demos import env_features, record_expert_demos
    from embodied.data.writer import LeRobotDatasetWriter
    from embodied.runner.sft import SFTTrainer
    from embodied.runner.trainer import Trainer
    from sims import make_env

    demos = str(tmp_path / "demos")
    env = make_env(task="Reach", num_envs=32, cameras=("front", "wrist"), image_size=(32, 32), autoreset=False)
    writer = LeRobotDatasetWriter.create(demos, fps=int(env.control_hz), features=env_features(env))
    record_expert_demos(env, writer, num_episodes=64, seed=0, progress=False)
    env.close()

    def config(run: str, *overrides):
        with initialize_config_dir(config_dir=_config_path(), version_base=None):
            cfg = compose("train", overrides=[
                "policy=vla", "policy.cameras=[front,wrist]", "env.image_size=[32,32]", "experiment.eval_episodes=128",
                "experiment.eval_interval=0", "experiment.checkpoint_interval=0", "experiment.progress=false",
                f"experiment.output_dir={tmp_path / run}", *overrides])
        return OmegaConf.to_object(cfg)

    SFTTrainer(config("sft", "algo=sft", f"data.paths=[{demos}]", "algo.sft_eval_interval=0", "algo.sft_steps=600",
                      "algo.learning_rate=1e-3")).train()
    ppo = Trainer(config("ppo", "algo=ppo", f"init_from={tmp_path / 'sft' / 'final_policy'}",
                         f"data.anchor_paths=[{demos}]", "algo.anchor_coef=0.1", "algo.anchor_fits_std=false",
                         "policy.critic=privileged", "algo.critic_warmup_iterations=3", "algo.learning_rate=3e-4",
                         "env.num_envs=32", "algo.rollout_steps=16", "algo.update_epochs=4",
                         "experiment.total_env_steps=65536"))
    before = ppo.run_eval(None, video=False)["success_once"]  # the SFT start on the evaluation's 128 episodes
    after = ppo.train()["success_once"]  # the same 128 episodes after PPO
    # Measured (seed 1, 128 episodes): 0.500 -> 0.859 in 65,536 env-steps (about 8 minutes beside another run);
    # with the advantages zeroed (the anchor's SFT alone) 0.500 -> 0.523. Both evaluations run the same 128 scenes
    # deterministically, so what moves the rate without PPO's signal is training noise, 2.3 points in that control;
    # even two independent 128-episode rates at 0.5 differ by 20 points only with p < 0.001.
    assert after >= before + 0.2, (before, after)
