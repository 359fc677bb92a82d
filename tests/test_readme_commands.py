"""Every command the README and each ``--help`` show runs as written (with budgets shrunk to seconds), in README
order in one folder, so later commands find what earlier ones wrote; what needs hardware, a GPU or a cluster
must stop with the one-line reason below instead of a traceback."""

import os
import re

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cli_commands import run_command, shown_commands
from embodied.cli.train import _config_path
from embodied.config.schema import validate

NO_CUDA = "torch finds no CUDA device here"
# What a command that cannot run on this machine must say (regex), by a pattern of its command line.
CANNOT_RUN_HERE = {
    r"robot=franka": r"needs the Python module 'franky': pip install 'embodied-vla\[real\]'",
    r"robot=ur ": r"could not connect to the ur robot at 192\.168\.1\.10 \(RuntimeError",  # ur_rtde installs here
    r"device=spacemouse": r"HID API is probably not installed",
    r"experiment\.device=cuda": None if torch.cuda.is_available() else NO_CUDA,
    r"env\.backend=maniskill": None if os.environ.get("VK_ICD_FILENAMES") else r"ManiSkill found no Vulkan device",
}
NOT_RUN = {r"^RAY_ADDRESS=head:6379 ": "needs the Ray cluster at head:6379 (composed and validated only)"}


def expected(line: str) -> str | None:
    """None: must run; otherwise the regex its error must match."""
    for pattern, message in CANNOT_RUN_HERE.items():
        if re.search(pattern, line):
            return message
    return None


@pytest.mark.slow
def test_every_shown_command_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = shown_commands()
    assert len(commands) >= 40 and commands[0] == "embodied-train"
    wrong = []
    for line in commands:
        if any(re.search(pattern, line) for pattern in NOT_RUN):
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=_config_path(), version_base=None):
                validate(OmegaConf.to_object(compose("train", overrides=line.split()[2:])))
            continue
        outcome, want = run_command(line, monkeypatch), expected(line)
        if want is None and outcome != "ok":
            wrong.append(f"{line}\n    failed: {outcome}")
        elif want is not None and (outcome == "ok" or not re.search(want, outcome) or "\n" in outcome):
            wrong.append(f"{line}\n    should stop with /{want}/, got: {outcome}")
    assert not wrong, "\n".join(wrong)
    assert os.path.isfile("runs/Reach_ppo/summary.json") and os.listdir("runs/Reach_ppo/videos")
