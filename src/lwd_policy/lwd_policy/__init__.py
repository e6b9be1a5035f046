"""Flow-matching VLA policy, its real-time inference runtime and the policy node."""
