"""Teleoperation data collection: device -> safety guard -> robot, recorded to a LeRobot dataset."""
