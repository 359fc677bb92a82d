"""What the Hydra CLIs print besides their results: ``--help`` that lists the config groups the command accepts
(Hydra's own lists every folder under configs/), and no third-party noise lines."""

from __future__ import annotations

import logging
import os

import yaml


def accepted_groups(config_dir: str, config_name: str) -> dict[str, list[str]]:
    """{group: [options]} of the groups in ``<config_name>.yaml``'s defaults list (its own config folders)."""
    with open(os.path.join(config_dir, f"{config_name}.yaml")) as f:
        defaults = yaml.safe_load(f).get("defaults", [])
    groups = {}
    for entry in defaults:
        group = next(iter(entry)) if isinstance(entry, dict) else None
        folder = os.path.join(config_dir, str(group))
        if group and os.path.isdir(folder):
            groups[group] = sorted(name[:-5] for name in os.listdir(folder) if name.endswith(".yaml"))
    return groups


def print_help(doc: str, config_dir: str, config_name: str, overrides: list[str]) -> None:
    """The command's docstring, its config groups and the config these overrides compose."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    print(doc.rstrip())
    print("\nConfig groups (pick one option with group=option):")
    for group, options in accepted_groups(config_dir, config_name).items():
        print(f"  {group}: {' | '.join(options)}")
    print("\nAny field: key=value (lists: key=[a,b]). The config these arguments compose:\n")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        print(OmegaConf.to_yaml(compose(config_name, overrides=overrides)))


def print_registered() -> None:
    """Every registry of the project and what it holds, with the setting that picks each (``--list``)."""
    import embodied.algorithms  # noqa: F401  (each import below fills its registries)
    import policies  # noqa: F401
    import real_robot.robot  # noqa: F401
    import real_robot.teleop.device  # noqa: F401
    import sims  # noqa: F401
    import sims.mujoco.controllers  # noqa: F401
    import sims.mujoco.domain  # noqa: F401
    from sims.registry import REGISTRIES

    for kind, registry in list(REGISTRIES.items()):  # listing may import modules that add registries
        print(f"{kind} ({registry.key}):")
        names = registry.names()
        width = max(map(len, names), default=0)
        for name in names:
            print(f"  {name:<{width}}  {registry.describe(name)}".rstrip())


def quiet_third_party_logs() -> None:
    """PyOpenGL logs "No OpenGL_accelerate module loaded" at INFO on import; keep its warnings only."""
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
