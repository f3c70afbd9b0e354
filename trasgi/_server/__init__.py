"""Serving: serve_tcp / serve_listeners / run, lifespan, metrics, systemd notify.

Imports the edge, I/O, configuration, protocol and observation layers.
"""
