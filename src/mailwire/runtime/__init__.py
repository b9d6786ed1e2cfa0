"""Composition root: settings -> store -> services -> servers, under one supervisor.

The only place that wires concrete pieces together and owns their lifetimes
(start order, graceful shutdown). May import every layer below it.
"""
