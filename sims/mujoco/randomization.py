"""Domain randomisation: per-episode colour, lighting, camera, friction and mass perturbations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Randomization:
    """Amounts of randomisation; zeros switch a hook off. Object poses are always drawn by the task."""

    color: float = 0.0  # max absolute change per RGB channel of objects and table
    lighting: float = 0.0  # max relative change of light intensity
    camera_position: float = 0.0  # max displacement of each fixed camera, metres
    friction: tuple[float, float] = (1.0, 1.0)  # range of the factor on every geom's sliding friction
    mass: tuple[float, float] = (1.0, 1.0)  # range of the factor on every object's mass

    def __post_init__(self):
        for name in ("color", "lighting", "camera_position"):
            if getattr(self, name) < 0:
                raise ValueError(f"randomization.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("friction", "mass"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"randomization.{name} must be a range 0 < low <= high, got {(lo, hi)}")

    @property
    def visual(self) -> bool:
        """Whether rendering needs per-env model fields."""
        return self.color > 0 or self.lighting > 0 or self.camera_position > 0

    @property
    def physical(self) -> bool:
        """Whether physics needs per-env model fields."""
        return self.friction != (1.0, 1.0) or self.mass != (1.0, 1.0)

    def sample_visuals(self, rng, base_rgba, random_geoms, base_cam_pos, base_light):
        """Per-episode geom colours, camera positions and light intensities."""
        rgba = base_rgba.copy()
        if self.color > 0:
            jitter = rng.uniform(-self.color, self.color, size=(len(random_geoms), 3))
            rgba[random_geoms, :3] = np.clip(rgba[random_geoms, :3] + jitter, 0.0, 1.0)
        cam_pos = base_cam_pos.copy()
        if self.camera_position > 0:
            cam_pos += rng.uniform(-self.camera_position, self.camera_position, size=cam_pos.shape)
        light = base_light.copy()
        if self.lighting > 0:
            light *= rng.uniform(1 - self.lighting, 1 + self.lighting)
        return rgba, cam_pos, np.clip(light, 0.0, 1.0)

    def sample_physics(self, rng, base_friction, base_mass, object_bodies):
        """Per-episode geom friction [ngeom, 3] and body masses [nbody]."""
        friction = base_friction.copy()
        friction[:, 0] *= rng.uniform(*self.friction)
        mass = base_mass.copy()
        mass[object_bodies] *= rng.uniform(*self.mass, size=len(object_bodies))
        return friction, mass
