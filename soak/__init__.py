"""`make soak`: the outbox under faults, counted at the receiving side.

A run queues messages with unique ids, lets real Celery workers deliver them to the
sandbox's Exchange stand-in, SIGKILLs a worker every few seconds (and starts it again),
cuts the broker once, and then counts what the server received: lost, duplicated, stuck.
"""
