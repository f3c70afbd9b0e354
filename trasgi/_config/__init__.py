"""The one configuration: the frozen Config and its sources (CLI, environment, TOML).

Imports the protocol and observation layers, whose parsers validate values.
"""
