"""Motion planning in joint space: Informed RRT* with MuJoCo collision checks."""
