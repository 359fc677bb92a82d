"""Real-robot deployment: policy actions to robot commands, observations back, the fixed-rate control loop."""
