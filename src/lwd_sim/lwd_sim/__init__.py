"""Simulated MuJoCo ALOHA dual-arm robot driver and scripted operator."""
