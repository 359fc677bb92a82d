"""RL on a robot: the robot (sim twin or hardware) behind the safety guard as a batched env."""
