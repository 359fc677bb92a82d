"""Batched rotation helpers (rotation matrices, rotation vectors, quaternions as w-x-y-z).

``rotvec_to_matrix`` and ``matrix_to_rotvec`` are array-generic (numpy, or torch on any device) and branch-free,
so a controller on a GPU never waits for the host; the quaternion helpers are numpy.
"""

from __future__ import annotations

import math

import numpy as np

from sims.arrays import clip, const, namespace, row_index


def rotvec_to_matrix(rotvec):
    """Rodrigues' formula: rotation vectors [N, 3] to matrices [N, 3, 3]."""
    xp = namespace(rotvec)
    angle = xp.sqrt(xp.sum(rotvec * rotvec, axis=-1, keepdims=True))  # [N, 1]
    nonzero = angle > 1e-12
    axis = xp.where(nonzero, rotvec / xp.where(nonzero, angle, 1.0), 0.0)
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = x * 0.0
    k = xp.reshape(xp.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1), (-1, 3, 3))
    s = xp.sin(angle)[:, :, None]
    c = xp.cos(angle)[:, :, None]
    return const(rotvec, np.eye(3))[None] + s * k + (1 - c) * (k @ k)


def matrix_to_rotvec(matrix):
    """Logarithm map: matrices [N, 3, 3] to rotation vectors [N, 3] (angles in [0, pi])."""
    xp = namespace(matrix)
    trace = matrix[:, 0, 0] + matrix[:, 1, 1] + matrix[:, 2, 2]
    cos = clip((trace - 1) / 2, -1.0, 1.0)
    angle = xp.acos(cos)  # [N]
    vee = xp.stack(
        [matrix[:, 2, 1] - matrix[:, 1, 2], matrix[:, 0, 2] - matrix[:, 2, 0], matrix[:, 1, 0] - matrix[:, 0, 1]],
        axis=-1,
    )
    sin = xp.sin(angle)
    small = sin < 1e-6
    scale = xp.where(small, 0.5, angle / (2 * xp.where(small, 1.0, sin)))
    rotvec = vee * scale[:, None]
    # angle ~ pi: the axis is the dominant column of (R + I) / 2 (computed for every row, used where needed)
    sym = (matrix + const(matrix, np.eye(3))[None]) / 2
    diagonal = xp.stack([sym[:, 0, 0], sym[:, 1, 1], sym[:, 2, 2]], axis=-1)
    col = xp.argmax(diagonal, axis=1)
    axis = sym[row_index(col), :, col]  # [N, 3]
    axis = axis / xp.sqrt(xp.sum(axis * axis, axis=1, keepdims=True))
    near_pi = (small & (cos < 0))[:, None]
    return xp.where(near_pi, axis * math.pi, rotvec)


def yaw_to_quat(yaw: np.ndarray) -> np.ndarray:
    """Quaternions [N, 4] (w, x, y, z) of rotations by yaw [N] about the world z axis."""
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=-1)


def quat_to_yaw(quat: np.ndarray) -> np.ndarray:
    """Yaw angle [...] of quaternions [..., 4] (w, x, y, z)."""
    w, x, y, z = quat[..., 0], quat[..., 1], quat[..., 2], quat[..., 3]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
