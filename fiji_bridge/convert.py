"""ImageJ1 ImagePlus <-> NumPy, for one plane; no focus logic here."""
import jpype
import numpy as np

from model.scaling import ImageError

from ._java import jimport

#: ImagePlus.getType() codes (ij.ImagePlus.GRAY8 ...) -> NumPy dtype of the pixel array.
_GRAY_TYPES = {0: np.uint8, 1: np.uint16, 2: np.float32}
_TYPE_NAMES = {3: "8-bit colour (indexed)", 4: "RGB"}


def plane_to_numpy(imp, plane=None):
    """The pixels of one plane of ``imp`` as a ``(rows, cols)`` array of its own type.

    Parameters
    ----------
    imp : ij.ImagePlus
    plane : int, optional
        1-based stack position (ImageJ's convention). Required for stacks.

    Raises
    ------
    ImageError
        For colour images, and for stacks without ``plane`` or with one out of range.
    """
    kind = int(imp.getType())
    if kind not in _GRAY_TYPES:
        raise ImageError(
            f"{imp.getTitle()} is {_TYPE_NAMES.get(kind, f'of type {kind}')}; the focus model needs one "
            "grayscale channel (Image > Type > 8-bit/16-bit, or split the channels)")
    depth = int(imp.getStackSize())
    if plane is None and depth > 1:
        raise ImageError(f"{imp.getTitle()} is a stack of {depth} planes; choose one by its 1-based index "
                         "(plane=N in Python, --plane N in focus-quality fiji)")
    plane = 1 if plane is None else int(plane)
    if not 1 <= plane <= depth:
        raise ImageError(f"plane {plane} is outside 1..{depth} for {imp.getTitle()}")
    processor = imp.getStack().getProcessor(plane)
    pixels = np.asarray(processor.getPixels())
    # Java has no unsigned types: bytes and shorts come back signed; reinterpret their bits.
    pixels = pixels.view(_GRAY_TYPES[kind]) if kind != 2 else pixels.astype(np.float32, copy=False)
    return pixels.reshape(int(processor.getHeight()), int(processor.getWidth())).copy()


def numpy_to_imageplus(title, planes):
    """An ImagePlus from a 2-D array or a ``(planes, rows, cols)`` stack of uint8, uint16 or float32."""
    planes = np.asarray(planes)
    if planes.ndim == 2:
        planes = planes[None]
    _, rows, cols = planes.shape
    stack = jimport("ij.ImageStack")(int(cols), int(rows))
    for plane in planes:
        stack.addSlice(None, _processor(plane))
    return jimport("ij.ImagePlus")(title, stack)


def _processor(plane):
    rows, cols = plane.shape
    flat = np.ascontiguousarray(plane).ravel()
    if plane.dtype == np.uint8:
        return jimport("ij.process.ByteProcessor")(cols, rows, jpype.JArray(jpype.JByte)(flat.view(np.int8)))
    if plane.dtype == np.uint16:
        return jimport("ij.process.ShortProcessor")(
            cols, rows, jpype.JArray(jpype.JShort)(flat.view(np.int16)), None)
    return jimport("ij.process.FloatProcessor")(cols, rows, jpype.JArray(jpype.JFloat)(flat.astype(np.float32)))
