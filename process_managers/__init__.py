"""Process managers: react to events and issue commands across departments.

The first ones (estimate hand-offs, lead conversion, deadlines) come with the Deal
aggregate; each will follow the notification log from its own stored position, as the
projector does, and run inside ``leadledger serve`` in embedded mode.
"""
