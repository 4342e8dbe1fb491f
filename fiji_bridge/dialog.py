"""The command's dialog, defined once for both routes into ImageJ.

The Python-driven menu entry (:mod:`fiji_bridge.menu`) builds it as a
GenericDialog; the macro that ``focus-quality install-fiji`` writes
(:mod:`fiji_bridge.install`) builds it with the macro language's ``Dialog``
functions. Both read back raw values that :func:`chosen_options` turns into
:class:`~fiji_bridge.batch.FijiOptions`.

ImageJ keys a macro option by the first word of its label (``columns=4``), so
the first words here are all different: they are the option names users type in
``run("Microscope Image Focus Quality", "planes=[...] columns=4 filled")``.
"""
from dataclasses import dataclass, replace

from model.scaling import in_host_words

#: The dialog's words for the scopes of :data:`fiji_bridge.planes.SCOPES`.
PLANE_CHOICES = {"plane": "Current plane", "stack": "Every plane of this channel",
                 "all": "Every plane of every channel"}

#: The field for ``max_value``: divide by this instead of the pixel type's scale (32-bit images of raw counts).
MAX_VALUE_LABEL = "Intensity full scale"


@dataclass(frozen=True)
class Field:
    """One control: its kind ("choice", "number", "checkbox"), label, FijiOptions attribute, stacks only or not."""

    kind: str
    label: str
    option: str
    stack_only: bool = False

    @property
    def key(self):
        """The macro option name ImageJ derives from the label."""
        return self.label.split()[0].lower()


FIELDS = (
    Field("choice", "Planes", "scope", stack_only=True),
    Field("number", "Columns of patches (0 = cover the image)", "tiles_x"),
    Field("number", "Rows of patches (0 = cover the image)", "tiles_y"),
    Field("number", "Border width (0 = automatic)", "border"),
    Field("number", f"{MAX_VALUE_LABEL} (0 = by pixel type)", "max_value"),
    Field("checkbox", "Filled patches", "solid"),
    Field("checkbox", "Probability image", "probability_image"),
    Field("checkbox", "Go to the best plane", "go_to_best", stack_only=True),
    Field("checkbox", "Duplicate the best plane (per frame)", "duplicate_best", stack_only=True),
)


def in_dialog_words(message):
    """A core error message with its advice for Python callers given as the dialog's field.

    >>> from model.scaling import MAX_VALUE_ADVICE
    >>> in_dialog_words("x spans 0..4095. " + MAX_VALUE_ADVICE)
    'x spans 0..4095. Set "Intensity full scale" in the dialog, e.g. to 65535 if the values are raw camera counts (intensity=65535 in a macro).'
    """
    key = next(field.key for field in FIELDS if field.option == "max_value")
    return in_host_words(message, "the image", f'Set "{MAX_VALUE_LABEL}" in the dialog, e.g. to 65535 if the values '
                                               f"are raw camera counts ({key}=65535 in a macro).")


def fields(stack):
    """The controls shown for a stack (``stack=True``) or a single plane."""
    return [f for f in FIELDS if stack or not f.stack_only]


def default_value(field, options):
    """What the control shows first, from FijiOptions ``options``."""
    value = getattr(options, field.option)
    if field.kind == "choice":
        return PLANE_CHOICES[value]
    if field.kind == "number":
        return value or 0
    return bool(value)


def chosen_options(defaults, values, stack):
    """FijiOptions from the dialog's raw values ({option: value}); numbers of 0 mean "automatic".

    Raises
    ------
    ValueError
        For a choice that is not one of :data:`PLANE_CHOICES` or a number that is not whole.
    """
    chosen = {"plane": None} if stack else {"plane": None, "scope": "plane"}
    for field in fields(stack):
        raw = values.get(field.option, default_value(field, defaults))
        if field.kind == "choice":
            scopes = {label: scope for scope, label in PLANE_CHOICES.items()}
            if raw not in scopes:
                raise ValueError(f"{field.key}={raw!r}: use one of {', '.join(scopes)}")
            chosen[field.option] = scopes[raw]
        elif field.kind == "number":
            number = float(raw)
            if number != int(number) or number < 0:
                raise ValueError(f"{field.key}={raw}: use a whole number, 0 or more")
            chosen[field.option] = int(number) or None
        else:
            chosen[field.option] = raw in (True, 1, "1", "true", "True")
    return replace(defaults, **chosen)
