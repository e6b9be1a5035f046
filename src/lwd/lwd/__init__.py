"""LWD bringup: launch files, configuration, and the lwd command-line runner."""
