"""Takeover arbitration, teleop inputs, reward labels and the intervention node."""
