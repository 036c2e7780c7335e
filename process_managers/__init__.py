"""Process managers: react to events and issue commands across departments.

- :mod:`process_managers.estimate_handoff` asks departments for estimates and moves the
  deal on when they are ready (or back when one is rejected);
- :mod:`process_managers.lead_conversion` turns quality leads into deals where the
  funnel says so;
- :mod:`process_managers.deadlines` reminds and escalates what waits too long.

Each follows the notification log from its own stored position
(:mod:`process_managers.runner`); they run inside ``leadledger serve`` in embedded mode
and as ``leadledger process`` on their own, on SQLite and PostgreSQL alike.
"""
