"""Arm models as data (one file per arm, registered in ``ARMS``): see ``sims/arms/base.py``."""

from sims.arms.base import ARMS, ArmModel, get_arm, register_arm

__all__ = ["ARMS", "ArmModel", "get_arm", "register_arm"]
