"""Pure logic of the stream processor: validation, counters, formulas and online learners.

Nothing in this package does I/O; :mod:`stream_app` wires it to Kafka, Redis and HTTP.
"""
