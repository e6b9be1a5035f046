"""The fleet store: its key layout, storage backends, episode catalog, policy channels and publication."""
