"""Studio Runner's client library: targets, Jupyter REST, the kernel protocol, notebooks.

Nothing in this package knows about AWS Lambda; the thin handlers in ``lambdas/studiorunner/steps``
adapt it to Step Functions.
"""
