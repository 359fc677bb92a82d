"""TwinRL's failure mining (embodied.robot_rl.twinrl): where a policy fails in the twin, and proposals that the
sim twin applies and a person is shown."""

import numpy as np
import torch

from embodied.robot_rl.env import PersonReset
from embodied.robot_rl.twinrl import (FailureMap, describe_configuration, initial_configurations, mine_failures,
                                      propose)
from real_robot.sim_twin import SimTwinRobot
from sims import make_env
from sims.experts import WaypointExpert
from tests.test_robot_env import make_env as make_robot_env

torch.set_num_threads(1)


class SucceedsOnTheLeft:
    """A stand-in policy: the scripted expert where the cube starts at y > 0 (the robot's left), still elsewhere."""

    training = False
    device = torch.device("cpu")

    def __init__(self, env):
        self.env, self.expert, self.left = env, WaypointExpert(env), None

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def acting_state(self):
        return None

    def load_acting_state(self, state) -> None:
        pass

    def reset(self) -> None:  # called after each wave's reset
        self.left = torch.as_tensor(self.env.scene_view().numpy().cube_pos[:, 0, 1] > 0)

    def select_action(self, obs) -> torch.Tensor:
        action = self.expert.act()
        return torch.where(self.left[:, None], action, torch.zeros_like(action))


def test_mining_proposes_where_the_policy_fails():
    env = make_env(task="PickCube", num_envs=16, autoreset=False)
    try:
        result = mine_failures(SucceedsOnTheLeft(env), env, seed=0, evaluated=128, candidates=200, count=16)
    finally:
        env.close()
    assert 0.3 < result.success_rate < 0.7  # it fails on about half the table
    right = result.features[:, 1] <= 0  # cube 1's y: where the policy stays still
    assert right.mean() >= 0.9, result.features[:, 1]  # uniform resets: about 0.5 (P(>= 15 of 16) = 0.0003)
    assert (result.failure_probability >= 0.5).all() and len(set(result.reset_ids.tolist())) == 16
    assert result.reset_ids.min() >= 128  # fresh configurations, not the evaluated ones


def test_failure_map_and_proposals_by_hand():
    features = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0], [13.0]])
    failure_map = FailureMap(features, np.array([1, 1, 1, 1, 0, 0, 0, 0]), k=2)
    assert failure_map(np.array([[0.5], [12.2], [6.4]])).tolist() == [1.0, 0.0, 0.5]
    probability = np.array([0.2, 0.9, 0.6, 1.0])
    assert sorted(propose(probability, 2, informative=(0.5, 0.95)).tolist()) == [1, 2]
    chosen = propose(probability, 3, informative=(0.5, 0.95))
    assert sorted(chosen[:2].tolist()) == [1, 2] and chosen[2] == 3  # then the most failure-prone of the rest


def test_the_twin_applies_a_proposal_and_a_person_is_shown_it():
    env = make_env(task="PickCube", num_envs=4, autoreset=False)
    features = initial_configurations(env, 0, np.array([0, 123]))
    env.close()
    twin = SimTwinRobot(task="PickCube", cameras=(), seed=0)
    twin.connect()
    try:
        robot_env = make_robot_env(twin)
        robot_env.queue_resets(0, [123])
        robot_env.reset(seed=5)  # the env's own seed differs: the queued scene keeps the mining seed's
        assert robot_env.reset_ids.tolist() == [123]
        view = twin.env.scene_view().numpy()
        assert np.allclose(view.cube_pos[0, 0, :2], features[1, :2], atol=1e-3)
        assert not np.allclose(view.cube_pos[0, 0, :2], features[0, :2], atol=1e-3)
        robot_env.close()
    finally:
        twin.disconnect()
    prompts = []
    person = PersonReset(ask=prompts.append, clock=lambda: 0.0,
                         describe=lambda reset_id: describe_configuration(features[1], cubes=1))
    person(twin, 3, 123)
    x, y = 100 * features[1, :2]
    assert f"cube 1 at x {x:.1f} cm, y {y:.1f} cm" in prompts[0] and prompts[0].startswith("episode 3")
