"""The one registry kind (sims/registry.py): lookups, lazy modules, a package whose new module registers itself,
``embodied-train --list``, and algorithms chosen by their config group."""

import re
import sys

import pytest
from hydra import compose, initialize_config_dir

from embodied.algorithms import AlgoConfig, algorithm_of
from embodied.algorithms.opd import OPDConfig
from embodied.cli import train as train_cli
from embodied.config.schema import validate
from sims.registry import REGISTRIES, Registry
from sims.tasks import TASKS


def test_a_new_module_in_the_package_registers_itself_and_lazy_names_import_on_demand(tmp_path, monkeypatch):
    package = tmp_path / "plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from sims.registry import Registry\n"
                                         "THINGS = Registry('test thing', package='plugin_pkg', "
                                         "lazy={'heavy': 'plugin_pkg_heavy'})\n")
    (package / "alpha.py").write_text("from plugin_pkg import THINGS\n\n@THINGS.register('alpha', attribute='kind')\n"
                                      "class Alpha:\n    '''The alpha thing.'''\n    def __init__(self, size=1):\n"
                                      "        self.size = size\n")
    (tmp_path / "plugin_pkg_heavy.py").write_text("from plugin_pkg import THINGS\nTHINGS.register('heavy')(dict)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import plugin_pkg

        things = plugin_pkg.THINGS
        assert "plugin_pkg.alpha" not in sys.modules and "plugin_pkg_heavy" not in sys.modules
        assert things.build({"type": "alpha", "size": 3}, default="heavy").size == 3  # found without an import
        assert things.lookup("alpha").kind == "alpha" and things.describe("alpha") == "The alpha thing."
        assert things.names() == ["alpha", "heavy"] and "plugin_pkg_heavy" not in sys.modules  # listed, not loaded
        assert things.lookup("heavy") is dict and "plugin_pkg_heavy" in sys.modules
        with pytest.raises(KeyError, match=r"unknown test thing 'alpah'; available: \['alpha', 'heavy'\]"):
            things.lookup("alpah")
        with pytest.raises(ValueError, match="registered twice"):
            things.register("alpha")(list)
    finally:
        REGISTRIES.pop("test thing", None)
        for name in ("plugin_pkg", "plugin_pkg.alpha", "plugin_pkg_heavy"):
            sys.modules.pop(name, None)


def test_a_second_registry_of_one_kind_is_refused():
    with pytest.raises(ValueError, match="exists already"):
        Registry(TASKS.kind)


def test_list_prints_every_registry_with_the_setting_that_picks_it(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["embodied-train", "--list"])
    train_cli.main()
    out = capsys.readouterr().out
    for heading in ("simulator backend (env.backend)", "task (env.task", "algorithm (algo=<name>)",
                    "advantage (algo.advantage)", "loss (algo.loss)", "collector (algo.collector)", "policy (policy.name", "vision encoder",
                    "language encoder", "action head (policy.head.name)", "camera type", "robot type",
                    "teleop device type"):
        assert heading in out, heading
    for name, description in (("opd", "on-policy distillation"), ("PickCube", "Pick up the red cube"),
                              ("ur", "A UR arm"), ("mujoco_warp", ""), ("spacemouse", "Reads the cap's 6 axes"),
                              ("ee_delta_pos", "End-effector position deltas"), ("shifted", "")):
        assert re.search(rf"^  {name}(?: +|$){re.escape(description)}", out, re.MULTILINE), name


def test_an_algorithm_is_chosen_by_its_config_group_with_its_own_settings():
    with initialize_config_dir(config_dir=train_cli.CONFIG_DIR, version_base=None):
        opd = compose("train", overrides=["algo=opd", "algo.teacher=runs/t/final_policy", "algo.update_epochs=2"])
        assert isinstance(train_cli.to_typed(opd, train_cli.TrainConfig, "t").algo, OPDConfig)
        with pytest.raises(Exception, match="teacher"):  # PPO has no teacher setting
            compose("train", overrides=["algo.teacher=runs/t/final_policy"])
    for name in ("opd", "grpo"):  # an algo.name override without the group: another algorithm's settings
        cfg = AlgoConfig()
        cfg.name = name
        with pytest.raises(ValueError, match=rf"algo.name={name} on a AlgoConfig: choose the algorithm with algo={name}"):
            algorithm_of(cfg)
    assert algorithm_of(AlgoConfig()).trainer == "rl" and algorithm_of(OPDConfig()).config is OPDConfig
    with initialize_config_dir(config_dir=train_cli.CONFIG_DIR, version_base=None):  # a policy config may set
        sft_vla = compose("train", overrides=["algo=sft", "policy=vla"])  # algo keys: the algo group loads first
    assert sft_vla.algo.ema_decay == 0.999


def test_experiment_vla_sft_is_the_pixel_recipe_on_any_task():
    with initialize_config_dir(config_dir=train_cli.CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=["experiment=vla_sft", "env=pick_cube", "data.paths=[demos/pick_cube]"])
    typed = train_cli.to_typed(cfg, train_cli.TrainConfig, "t")
    validate(typed)
    assert (typed.algo.name, typed.policy.name, typed.algo.sft_steps, typed.algo.learning_rate) == (
        "sft", "vla", 8000, 6e-4)
    assert (typed.data.scene_frames, typed.data.carried_scenes) == (4096, True)
    assert list(typed.env.cameras) == list(typed.policy.cameras) == ["front", "wrist", "side"]
    assert typed.experiment.name == "PickCube_vla_sft" and typed.experiment.output_dir == "runs/PickCube_vla_sft"


def test_experiment_vla_sft_on_lang_place_cube_has_film_and_the_task_declared_aux_state():
    with initialize_config_dir(config_dir=train_cli.CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=["experiment=vla_sft", "env=lang_place_cube",
                                          "data.paths=[demos/lang_place_cube]"])
    typed = train_cli.to_typed(cfg, train_cli.TrainConfig, "t")
    validate(typed)
    assert (typed.env.task, typed.algo.name, typed.algo.sft_steps, typed.data.scene_frames) == (
        "LangPlaceCube", "sft", 8000, 4096)
    assert typed.policy.vision == {"name": "keypoints", "freeze": False, "film": True}
    assert (typed.policy.aux_state_coef, typed.policy.aux_state_dims) == (20.0, None)  # null: the task's [21, 43)
    assert typed.experiment.name == "LangPlaceCube_vla_sft"
