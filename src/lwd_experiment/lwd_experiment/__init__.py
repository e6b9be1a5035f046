"""The simulated-fleet experiment: in-process robots, the learning-while-deploying loop, presets, statistics, report."""
