"""The run, step by step: one module per state of the state machine (``catalog.STEPS``).

Nothing is imported here: each step's handler imports its own module, so a Lambda loads
only what its step needs.
"""
