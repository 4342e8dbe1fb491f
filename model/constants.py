"""Numbers fixed by the method (Yang et al. 2018) and shared by every part of the package."""

#: Side of the square patches the network sees, in pixels.
PATCH_SIZE = 84

#: Defocus levels: 0 = in focus ... 10 = about 30 px blur diameter (~3 px per level).
NUM_LEVELS = 11

#: The model's input is raw camera counts divided by this (the 16-bit full scale).
FULL_SCALE_COUNTS = 65535.0

#: Whole-image rule for ``in_focus``: probability mass on levels 0..IN_FOCUS_MAX_LEVEL.
#: Levels 0-2 are blur diameters up to ~7 px, the acceptable-focus limit the original
#: authors used in their own Fiji workflow (P(0)+P(1)+P(2) >= 0.5).
IN_FOCUS_MAX_LEVEL = 2

#: Seconds a worker process of ``predict`` may spend on one file before it is replaced (a decoder that
#: hangs); a 32768x32768 image takes about a minute.
DEFAULT_TIME_LIMIT = 900
