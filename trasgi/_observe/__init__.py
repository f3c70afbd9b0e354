"""Observation: loggers and access records.

The bottom layer but for the ASGI types and the error taxonomy.
"""
