"""Array-generic helpers: task, controller and geometry code runs on numpy (CPU backend) or torch (on a device)."""

from __future__ import annotations

import array_api_compat.numpy as numpy_namespace
import numpy as np
from array_api_compat import array_namespace, device, is_numpy_array

__all__ = ["clip", "const", "device", "namespace", "norm", "row_index", "to_numpy"]


def namespace(*arrays):
    """The array namespace (numpy- or torch-compatible, array API standard) of ``arrays``."""
    if all(type(a) is np.ndarray for a in arrays):  # the CPU backend's case, ~10 calls a step: skip the detection
        return numpy_namespace
    return array_namespace(*arrays)


def const(like, values):
    """``values`` as an array with ``like``'s namespace, dtype and device (constants in array-generic math)."""
    if type(like) is np.ndarray:
        return np.asarray(values, dtype=like.dtype)
    xp = array_namespace(like)
    return xp.asarray(values, dtype=like.dtype, device=device(like))


def clip(x, low, high):
    """``x`` limited to [low, high] elementwise (numpy's own clip on numpy: 10x cheaper than the compat layer's)."""
    if type(x) is np.ndarray:
        return np.clip(x, low, high)
    return array_namespace(x).clip(x, low, high)


def row_index(like):
    """``arange(N)`` for the leading dim of ``like`` on its device (for per-row gathers such as ``a[rows, k]``)."""
    xp = array_namespace(like)
    return xp.arange(like.shape[0], device=device(like))


def norm(x):
    """Euclidean norm over the last axis (``np.linalg.norm`` on numpy, so CPU results stay bit-identical)."""
    if is_numpy_array(x):
        import numpy as np

        return np.linalg.norm(x, axis=-1)
    return array_namespace(x).linalg.vector_norm(x, axis=-1)


def to_numpy(x):
    """A host numpy array of ``x`` (unchanged when it already is one)."""
    if is_numpy_array(x):
        return x
    return x.detach().cpu().numpy()
