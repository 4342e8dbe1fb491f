"""Making and checking focus models: the simulator, training sources, training, export and evaluation.

This subpackage uses the inference core (:mod:`model`) and is never imported by
it: hosts (CellProfiler, Fiji, the ``predict`` command) load only the core.
Its commands (``degrade``, ``train``, ``evaluate``, ``check-simulator``) are
added to ``focus-quality`` by :func:`model.training.commands.add_commands`.
"""
