"""Command groups of the ``lwd`` CLI; each module exposes ``register(subparsers)``."""
