"""CellProfiler plugins folder: point CellProfiler's plugins directory here (the module itself is in progress)."""
