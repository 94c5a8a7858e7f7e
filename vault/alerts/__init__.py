"""Alerts to applicants and acknowledgements of receipt to OFPRA and the prefecture.

:mod:`vault.alerts.messages` renders what to say; :mod:`vault.alerts.channels` says it
(the ``AlertChannel`` port and its e-mail, SMS and webhook adapters).
"""
