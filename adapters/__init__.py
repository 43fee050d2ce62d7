"""Thin translators between one switch protocol and agner's wire events.

- :mod:`agner.adapters.kamailio`: SIP through Kamailio's evapi (kamailio.cfg ships here)
- :mod:`agner.adapters.freeswitch`: FreeSWITCH's inbound event socket
- :mod:`agner.adapters.asterisk`: Asterisk's manager interface (AMI)

Each keeps one switch session open to ``agner serve`` (:mod:`agner.adapters.link`),
reconnects both links with backoff, and reconciles its calls when either comes
back. docs/ADAPTERS.md describes them.
"""
