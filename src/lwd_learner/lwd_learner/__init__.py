"""Bags to dataset, DIVL + QAM offline-to-online training, and the trainer node."""
