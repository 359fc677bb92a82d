"""embodied-vla core: algorithms, rollout, training runner and command-line tools."""
