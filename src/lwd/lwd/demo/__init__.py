"""The learning-while-deploying demo: a simulated fleet, the scripted operator, the trainer, and the report."""
