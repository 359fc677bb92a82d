"""Fixed domain shifts: a held-out "real" domain that differs from the training simulator in measurable ways.

Unlike randomisation (a new draw every episode), a shift changes the model once: object and table colours,
the fixed cameras' positions, light intensity and sliding friction. Episodes (object poses, instructions) are
the same as in the unshifted domain for the same (seed, reset id), so success rates compare like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sims.registry import Registry


@dataclass(frozen=True)
class DomainShift:
    """Offsets and scales applied to the MuJoCo model at construction."""

    color_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # added to RGB of cubes, markers and table
    camera_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # metres, added to every fixed camera
    light_scale: float = 1.0  # factor on light intensity (diffuse)
    friction_scale: float = 1.0  # factor on every geom's sliding friction

    def __post_init__(self):
        if self.light_scale <= 0 or self.friction_scale <= 0:
            raise ValueError(f"light_scale and friction_scale must be > 0, got {self.light_scale}, "
                             f"{self.friction_scale}")

    def apply(self, model, object_geoms: np.ndarray) -> None:
        """Shift ``model`` in place (``object_geoms``: the geoms whose colour changes)."""
        rgb = model.geom_rgba[object_geoms, :3] + np.asarray(self.color_offset)
        model.geom_rgba[object_geoms, :3] = np.clip(rgb, 0.0, 1.0)
        model.cam_pos[:] += np.asarray(self.camera_offset)
        model.light_diffuse[:] = np.clip(model.light_diffuse * self.light_scale, 0.0, 1.0)
        model.geom_friction[:, 0] *= self.friction_scale


DOMAINS = Registry("domain", key="env.domain")
DOMAINS.register("sim")(DomainShift())
# The stand-in for a real robot cell: warmer, dimmer, camera moved 3-4 cm, 40% less friction.
DOMAINS.register("shifted")(DomainShift(color_offset=(0.12, 0.06, -0.08), camera_offset=(0.03, -0.04, 0.03),
                                        light_scale=0.7, friction_scale=0.6))
# A digital twin of that cell as TwinRL builds one: its look reconstructed (colours within 0.02, light within 10%, as
# photographed; the cameras placed by hand-eye calibration, within 1 cm per axis), its physics the simulator's
# (friction not identified). Where it still differs from "shifted" is the point: a twin is close to its cell, not equal.
DOMAINS.register("shifted_twin")(DomainShift(color_offset=(0.10, 0.05, -0.06), camera_offset=(0.025, -0.035, 0.022),
                                             light_scale=0.75, friction_scale=1.0))


def make_domain(name: str) -> DomainShift:
    """A named domain: ``sim`` (unchanged), ``shifted`` (the held-out "real" domain) or ``shifted_twin`` (its twin)."""
    return DOMAINS.lookup(name)
