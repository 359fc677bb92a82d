"""Off-policy runs (SAC, RLPD) resume exactly: after Ctrl-C, and after a kill -9 that lands between flushing the
replay buffer and writing the checkpoint of the same iteration (the buffer is reopened as the previous checkpoint
recorded it)."""

import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from embodied.data.replay import ReplayBuffer
from tests.ctrl_c import ctrl_c_on_call
from tests.test_training import config

ITERATION = 4 * 10  # env-steps per iteration: 4 envs x 10 steps
# a ring of 25 steps per env, so the buffer wraps; a checkpoint every 3 iterations (30 steps per env); 6.8 critic
# updates per step of the 4 envs (a fraction owed across checkpoints), the actor after every second one
SETTINGS = dict(algo__name="sac", policy__name="tanh_mlp", env__num_envs=4, algo__rollout_steps=10,
                algo__learning_starts=40, algo__batch_size=16, algo__buffer_size=100, algo__utd_ratio=1.7,
                experiment__eval_interval=0, experiment__eval_episodes=2, experiment__eval_num_envs=2,
                experiment__checkpoint_interval=3)

KILLED_RUN = """
import os, signal, sys
sys.path.insert(0, {root!r})
import tests.conftest
import embodied.runner.offpolicy as offpolicy
from tests.test_offpolicy_resume import settings

save = offpolicy.save_checkpoint

def save_or_die(directory, iteration, *args, **kwargs):
    if iteration == 9:  # the buffer has just been flushed at iteration 9; its checkpoint is never written
        os.kill(os.getpid(), signal.SIGKILL)
    return save(directory, iteration, *args, **kwargs)

offpolicy.save_checkpoint = save_or_die
offpolicy.OffPolicyTrainer(settings({path!r}, 10)).train()
"""


def settings(path, iterations: int, resume: bool = False):
    """The TrainConfig of a small SAC run on Reach of ``iterations`` iterations."""
    cfg = config(path, experiment__total_env_steps=iterations * ITERATION, **SETTINGS)
    cfg.resume = resume
    return cfg


def run(path, iterations: int, resume: bool = False) -> tuple[dict, dict]:
    """The final evaluation and the unfinished episodes' bookkeeping of a run."""
    from embodied.runner.offpolicy import OffPolicyTrainer

    trainer = OffPolicyTrainer(settings(path, iterations, resume))
    return trainer.train(), trainer.rollout.stats.state_dict()


def weights(path) -> dict:
    return load_file(os.path.join(path, "final_policy", "model.safetensors"))


def same_weights(a, b) -> bool:
    a, b = weights(a), weights(b)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def same_episodes(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_kill_9_between_the_buffer_flush_and_the_checkpoint_resumes_exactly(tmp_path):
    full, full_episodes = run(tmp_path / "full", 10)
    cut = tmp_path / "cut"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN.format(root=os.getcwd(), path=str(cut))],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(os.listdir(cut / "checkpoints")) == ["iter_000003", "iter_000006"]
    assert ReplayBuffer.open(str(cut / "replay")).steps == 90  # flushed at iteration 9, after its checkpoint's data
    # from iteration 6: the buffer as it was at 60 steps per env (steps 35-59, with the episode ends at step 49)
    resumed, resumed_episodes = run(cut, 10, resume=True)
    assert resumed == full
    assert same_weights(tmp_path / "full", cut)
    assert same_episodes(full_episodes, resumed_episodes)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues_exactly(tmp_path, monkeypatch):
    import embodied.runner.offpolicy as offpolicy

    full, full_episodes = run(tmp_path / "full", 5)
    with ctrl_c_on_call(monkeypatch, offpolicy.OffPolicyTrainer, "_collect_and_learn", 2):  # the second iteration
        assert run(tmp_path / "cut", 5)[0] == {"interrupted_at": 2}
    assert sorted(os.listdir(tmp_path / "cut" / "checkpoints")) == ["iter_000002"]  # off the interval of 3
    resumed, resumed_episodes = run(tmp_path / "cut", 5, resume=True)
    assert resumed == full
    assert same_weights(tmp_path / "full", tmp_path / "cut")
    assert same_episodes(full_episodes, resumed_episodes)


def test_a_buffer_cannot_be_reopened_where_no_unbroken_record_reaches(tmp_path):
    buffer = ReplayBuffer(capacity=5, num_envs=1, directory=str(tmp_path), flush_every=None)
    step = dict(obs={"state": torch.zeros(1, 2)}, action=torch.zeros(1, 1), reward=torch.zeros(1),
                terminated=torch.zeros(1, dtype=torch.bool), truncated=torch.zeros(1, dtype=torch.bool))
    for flush_at in (3, 6, 12, 18):
        while buffer.steps < flush_at:
            buffer.add(**step)
        buffer.flush()
    assert ReplayBuffer.open(str(tmp_path), steps=12).steps == 12  # the flush before the last: still kept
    with pytest.raises(ValueError, match="cannot be restored to step 6"):
        ReplayBuffer.open(str(tmp_path), steps=6)  # two flushes back: steps 1 to 5 are gone


def test_a_damaged_segment_is_named_in_a_one_line_error_and_a_cut_write_is_swept(tmp_path):
    buffer = ReplayBuffer(capacity=5, num_envs=1, directory=str(tmp_path), flush_every=None)
    step = dict(obs={"state": torch.zeros(1, 2)}, action=torch.zeros(1, 1), reward=torch.zeros(1),
                terminated=torch.zeros(1, dtype=torch.bool), truncated=torch.zeros(1, dtype=torch.bool))
    for _ in range(3):
        buffer.add(**step)
    buffer.flush()
    (tmp_path / "segment_000000000003_000000000006.npz.tmp-99").write_bytes(b"half a segment")
    assert ReplayBuffer.open(str(tmp_path)).steps == 3
    assert not any(".tmp" in name for name in os.listdir(tmp_path))
    segment = tmp_path / buffer.segments[0]
    segment.write_bytes(segment.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"segment {segment} cannot be read"):
        ReplayBuffer.open(str(tmp_path))


def test_an_off_policy_run_ends_after_the_iteration_that_crosses_its_time_limit(tmp_path):
    from embodied.runner.offpolicy import OffPolicyTrainer

    cfg = settings(tmp_path, 5)
    cfg.experiment.time_limit_s = 1e-6  # out of time once the first iteration ends
    cfg.experiment.eval_interval = 1
    trainer = OffPolicyTrainer(cfg)
    final = trainer.train()
    assert trainer.iteration == 1 and trainer.counters["env_steps"] == ITERATION and final["episodes"] == 2
    assert len(trainer.eval_history) == 1  # not evaluated twice at the same env-step
