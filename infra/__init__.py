"""The Studio Runner CDK app: one construct per concern, composed by ``stack.StudioRunnerStack``."""
