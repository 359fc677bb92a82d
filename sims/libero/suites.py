"""LIBERO suites and tasks as plain data, and the observation LeRobot's LIBERO env presents (8-D state, flipped images).

Everything here follows LeRobot's ``envs/libero.py`` so that a policy trained on LeRobot's LIBERO datasets sees the
same inputs: the state is the tool position, its orientation as an axis-angle and the two gripper finger positions;
images are turned 180 degrees; episodes end after the suite's step limit, not counting 10 settle steps.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Episode limits of LeRobot's LIBERO env (its TASK_SUITE_MAX_STEPS); other suites get its default, 500
SUITE_MAX_STEPS = {"libero_spatial": 280, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
DEFAULT_MAX_STEPS = 500
SETTLE_STEPS = 10  # steps of SETTLE_ACTION after each reset, outside the episode (objects drop onto the table)
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)  # hold still, gripper open
# our camera name -> robosuite camera, named as LeRobot's LIBERO datasets name the images
CAMERAS = {"image": "agentview", "image2": "robot0_eye_in_hand"}
ACTION_NAMES = ("dx", "dy", "dz", "dax", "day", "daz", "gripper")  # OSC pose delta; gripper -1 open, +1 closed
STATE_DIM = 8


def import_libero():
    """The ``libero.libero`` package, or ImportError naming the install."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from libero.libero import benchmark, get_libero_path  # noqa: F401
            import libero.libero.envs  # noqa: F401
    except ImportError as err:
        raise ImportError("env.backend=libero needs the LIBERO suites: make install (or pip install --no-deps "
                          "-r requirements-libero.txt)") from err
    import libero.libero

    return libero.libero


@dataclass(frozen=True)
class LiberoTask:
    """One task of a suite: its BDDL problem file, instruction and fixed initial states."""

    suite: str
    index: int
    name: str
    instruction: str
    bddl_file: str
    init_states: np.ndarray  # float64 [S, D]: flattened MuJoCo states, one per fixed initial state (S = 50 in the
    # five standard suites; some LIBERO-PRO variants ship 10)


def suite_max_steps(suite: str) -> int:
    """LeRobot's episode limit for ``suite``; a LIBERO-PRO variant (libero_goal_swap) keeps its base suite's."""
    bases = sorted(SUITE_MAX_STEPS, key=len, reverse=True)  # libero_10 before libero_1...
    return next((SUITE_MAX_STEPS[b] for b in bases if suite == b or suite.startswith(b + "_")), DEFAULT_MAX_STEPS)


def parse_task_spec(spec: str) -> tuple[str, list[int] | None]:
    """``"libero_spatial"`` (all its tasks) or ``"libero_spatial/3"`` / ``"libero_spatial/0+4"`` (those tasks)."""
    suite, _, picked = spec.partition("/")
    if not picked:
        return suite, None
    try:
        return suite, [int(i) for i in picked.split("+")]
    except ValueError:
        raise ValueError(f"env.task={spec!r}: after '/' give task indices, e.g. {suite}/0 or {suite}/0+3") from None


def load_suite(spec: str) -> list[LiberoTask]:
    """The tasks ``spec`` names (see ``parse_task_spec``), with instructions as LeRobot gives them.

    The five standard suites take ``task.language`` (what LeRobot's env and datasets use); LIBERO-PRO variants
    take the instruction written in their BDDL file, since a reworded (``_lan``) suite changes only that.
    """
    libero = import_libero()
    from libero.libero.envs.bddl_utils import get_problem_info

    suite_name, picked = parse_task_spec(spec)
    suites = libero.benchmark.get_benchmark_dict()
    if suite_name not in suites:
        standard = ", ".join(SUITE_MAX_STEPS)
        raise ValueError(f"unknown LIBERO suite {suite_name!r}: the standard ones are {standard}; "
                         f"LIBERO-PRO adds {len(suites) - len(SUITE_MAX_STEPS)} variants such as libero_goal_swap")
    with contextlib.redirect_stdout(io.StringIO()):  # the suite prints its task order
        suite = suites[suite_name]()
    indices = list(range(suite.n_tasks)) if picked is None else picked
    bad = [i for i in indices if not 0 <= i < suite.n_tasks]
    if bad:
        raise ValueError(f"{suite_name} has tasks 0..{suite.n_tasks - 1}, not {bad}")
    bddl_root = Path(libero.get_libero_path("bddl_files"))
    tasks = []
    for i in indices:
        task = suite.get_task(i)
        bddl = str(bddl_root / task.problem_folder / task.bddl_file)
        language = task.language if suite_name in SUITE_MAX_STEPS else get_problem_info(bddl)["language_instruction"]
        init_states = np.asarray(suite.get_task_init_states(i))
        if init_states.ndim != 2 or len(init_states) == 0:
            raise ValueError(f"{suite_name} task {i} ({task.name}) ships no fixed initial states "
                             f"(shape {init_states.shape}); pick its other tasks with {suite_name}/<index>")
        tasks.append(LiberoTask(suite_name, i, task.name, language, bddl, init_states))
    return tasks


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Axis-angle [3] of a unit quaternion (x, y, z, w), as robosuite and LeRobot compute it (0 for no rotation)."""
    w = min(max(float(quat_xyzw[3]), -1.0), 1.0)
    den = math.sqrt(max(1.0 - w * w, 0.0))
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return np.asarray(quat_xyzw[:3], dtype=np.float64) * 2.0 * math.acos(w) / den


def lerobot_state(raw_obs: dict) -> np.ndarray:
    """LeRobot's 8-D LIBERO state: tool position, tool axis-angle, the two gripper finger positions (float32)."""
    return np.concatenate([raw_obs["robot0_eef_pos"], quat_to_axis_angle(raw_obs["robot0_eef_quat"]),
                           raw_obs["robot0_gripper_qpos"]]).astype(np.float32)


def upright(raw_image: np.ndarray) -> np.ndarray:
    """A robosuite image as LeRobot's LIBERO processor presents it, contiguous uint8 [H, W, 3]: rows and columns
    reversed, which puts OpenGL's bottom-up image upright and mirrors it left-right (as in LeRobot's datasets)."""
    return np.ascontiguousarray(raw_image[::-1, ::-1])
