"""The Faust application and its edges (Kafka, Redis, HTTP, CLI).

Pure logic (validation, formulas, learners) lives in :mod:`models`; this package only wires it
to the outside world.
"""
