"""Aggregates: the business rules of LeadLedger, pure functions with no I/O.

Each aggregate is written as a decider: ``decide(state, command, ...) -> event`` and
``evolve(state, event) -> state``. Time, ids and the actor arrive with the command's
metadata; nothing here reads the clock or touches a database.
"""
