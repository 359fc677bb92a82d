"""Errors of the hardware layer; each message says what to do."""


class DeviceNotConnectedError(RuntimeError):
    """A device was used before ``connect()`` or after ``disconnect()``."""


class DeviceAlreadyConnectedError(RuntimeError):
    """``connect()`` was called on a connected device."""


class SafetyStop(RuntimeError):
    """The safety guard stopped the robot (e-stop, watchdog, lost connection, SDK error)."""
