"""Processes: the command line, the worker supervisor, reload.

The top layer: it may import every layer below it.
"""
