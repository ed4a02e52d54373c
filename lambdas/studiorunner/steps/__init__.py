"""Thin AWS Lambda handlers, one per state of statemachine/runner.asl.json."""
