"""Compose the tabletop MJCF: table, arm, task objects, cameras and lights."""

from __future__ import annotations

from dataclasses import dataclass

from sims.arms import ArmModel, get_arm
from sims.mujoco import arm_model

TABLE_TOP_Z = 0.0


@dataclass(frozen=True)
class Cube:
    """A free-floating cube the robot can push or grasp."""

    name: str
    half_size: float
    rgba: tuple[float, float, float, float]
    density: float = 800.0


@dataclass(frozen=True)
class Marker:
    """A visual-only marker (goal sphere or flat target disc) the robot cannot touch."""

    name: str
    shape: str  # "sphere" or "disc"
    radius: float
    rgba: tuple[float, float, float, float]
    stem: float = 0.0  # sphere only: a thin post this long below it (the table hides what is under its top)


def _fmt(values) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _cube_xml(cube: Cube) -> str:
    h = cube.half_size
    return (
        f'<body name="{cube.name}" pos="0 0 {h}"><freejoint name="{cube.name}"/>'
        f'<geom name="{cube.name}" type="box" size="{h} {h} {h}" rgba="{_fmt(cube.rgba)}" density="{cube.density}" '
        'condim="4" friction="1.2 0.01 0.001" solref="0.01 1" solimp="0.95 0.995 0.001" contype="1" conaffinity="3"/></body>'
    )


def _marker_xml(marker: Marker) -> str:
    # Markers are mocap bodies so that a reset can move them without touching the physics state.
    if marker.shape == "sphere":
        shapes = [("", f'type="sphere" size="{marker.radius}"')]
        if marker.stem > 0:  # shows one camera where a floating goal stands on the table and how high it is
            post = f'fromto="0 0 0 0 0 {-marker.stem:.6g}" size="{marker.radius / 3:.6g}"'
            shapes.append(("_stem", f'type="cylinder" {post}'))
    elif marker.shape == "disc":
        shapes = [("", f'type="cylinder" size="{marker.radius} 0.001"')]
    else:
        raise ValueError(f"unknown marker shape {marker.shape!r}; use 'sphere' or 'disc'")
    geoms = "".join(f'<geom name="{marker.name}{suffix}" {shape} rgba="{_fmt(marker.rgba)}" contype="0" '
                    'conaffinity="0" group="2"/>' for suffix, shape in shapes)
    return f'<body name="{marker.name}" mocap="true" pos="0 0 0.001">{geoms}</body>'


def build_scene_xml(cubes: tuple[Cube, ...], markers: tuple[Marker, ...], timestep: float,
                    arm: ArmModel | None = None) -> str:
    """Return the full MJCF string for a tabletop scene with the arm (default: the Panda) and the given objects."""
    arm = arm or get_arm("panda")
    objects = "".join(_cube_xml(c) for c in cubes) + "".join(_marker_xml(m) for m in markers)
    return f"""
<mujoco model="embodied_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality shadowsize="0"/>
    <global offwidth="512" offheight="512"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.5 0.5 0.5"/>
  </visual>
  <default>{arm_model.arm_defaults()}</default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.45 0.35" rgb2="0.5 0.4 0.3" width="64" height="64"/>
    <material name="table" texture="grid" texrepeat="4 4"/>
  </asset>
  <worldbody>
    <light name="key" pos="0.2 -0.4 1.5" dir="-0.1 0.25 -1" diffuse="0.6 0.6 0.6" castshadow="false"/>
    <geom name="floor" type="plane" size="2 2 0.1" pos="0 0 -0.75" rgba="0.3 0.32 0.35 1" contype="1" conaffinity="1"/>
    <geom name="table" type="box" size="0.6 0.7 0.02" pos="-0.15 0 -0.02" material="table"
          contype="1" conaffinity="3" friction="0.8 0.01 0.001"/>
    <camera name="front" pos="0.45 0 0.45" xyaxes="0 1 0 -0.6 0 0.8" fovy="55"/>
    <camera name="side" pos="0 -0.6 0.2" xyaxes="1 0 0 0 0.164 0.986" fovy="50"/>
    {arm_model.arm_body(arm)}
    {objects}
  </worldbody>
  {arm_model.arm_actuators(arm)}
</mujoco>
"""
