"""Notifications: alerts e-mailed to their recipients (:mod:`notifications.mailer`)."""
