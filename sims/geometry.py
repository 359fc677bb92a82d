"""Batched rotation helpers in numpy (rotation matrices, rotation vectors, quaternions as w-x-y-z)."""

from __future__ import annotations

import numpy as np


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation vectors [N, 3] to matrices [N, 3, 3]."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)  # [N, 1]
    axis = np.divide(rotvec, angle, out=np.zeros_like(rotvec), where=angle > 1e-12)
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(-1, 3, 3)
    s = np.sin(angle)[:, :, None]
    c = np.cos(angle)[:, :, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """Logarithm map: matrices [N, 3, 3] to rotation vectors [N, 3] (angles in [0, pi])."""
    trace = np.trace(matrix, axis1=1, axis2=2)
    cos = np.clip((trace - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)  # [N]
    vee = np.stack(
        [matrix[:, 2, 1] - matrix[:, 1, 2], matrix[:, 0, 2] - matrix[:, 2, 0], matrix[:, 1, 0] - matrix[:, 0, 1]],
        axis=-1,
    )
    sin = np.sin(angle)
    small = sin < 1e-6
    scale = np.where(small, 0.5, angle / (2 * np.where(small, 1.0, sin)))
    rotvec = vee * scale[:, None]
    near_pi = small & (cos < 0)
    if near_pi.any():  # angle ~ pi: the axis is the dominant column of (R + I) / 2
        sym = (matrix[near_pi] + np.eye(3)[None]) / 2
        col = np.argmax(np.diagonal(sym, axis1=1, axis2=2), axis=1)
        axis = sym[np.arange(col.size), :, col]
        axis /= np.linalg.norm(axis, axis=1, keepdims=True)
        rotvec[near_pi] = axis * np.pi
    return rotvec


def yaw_to_quat(yaw: np.ndarray) -> np.ndarray:
    """Quaternions [N, 4] (w, x, y, z) of rotations by yaw [N] about the world z axis."""
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], axis=-1)


def quat_to_yaw(quat: np.ndarray) -> np.ndarray:
    """Yaw angle [...] of quaternions [..., 4] (w, x, y, z)."""
    w, x, y, z = quat[..., 0], quat[..., 1], quat[..., 2], quat[..., 3]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
