"""Small files in the microscope formats of `model.formats`, written for the tests.

CZI comes from Zeiss's own writer (pylibCZIrw) and OME-Zarr from zarr with
OME-NGFF metadata. Leica LIF and Nikon ND2 have no writer on PyPI, so the
tests write the containers the maintained readers parse:

- `write_lif`: a magic number, a UTF-16 XML header describing each series,
  and one memory block of raw 16-bit frames per series, ordered time, z,
  channel (the layout readlif, after Bio-Formats, reads);
- `write_nd2`: ND2 version 3 chunks (file signature, image attributes, picture
  metadata and experiment loops as CLx-variant XML, one 4096-byte-aligned
  chunk per frame with its channels interleaved) and the chunk map at the end,
  as the `nd2` package reads them.
"""
import struct

import numpy as np

LIF_MAGIC, LIF_MEMORY = struct.pack("<I", 0x70), b"\x2a"
ND2_MAGIC, ND2_ALIGNMENT, ND2_FRAME_NAME_LENGTH = 0x0ABECEDA, 4096, 4072
ND2_CHUNK_MAP = b"ND2 CHUNK MAP SIGNATURE 0000001!"


def write_czi(path, data):
    """``data`` (T, Z, C, Y, X) uint16 as a CZI file."""
    from pylibCZIrw import czi

    with czi.create_czi(str(path), exist_ok=True) as document:
        for (t, z, c), plane in np.ndenumerate(np.empty(data.shape[:3])):
            document.write(data=data[t, z, c][..., None], plane={"T": t, "Z": z, "C": c})


def write_ome_zarr(path, data, axes="czyx"):
    """``data`` with the named ``axes`` as a one-level OME-Zarr (NGFF 0.4) image."""
    import zarr

    group = zarr.open_group(str(path), mode="w")
    array = group.create_array("0", shape=data.shape, chunks=(1,) * (data.ndim - 2) + (64, 64), dtype=data.dtype)
    array[:] = data
    kinds = {"t": "time", "c": "channel"}
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": a, "type": kinds.get(a, "space")} for a in axes],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * data.ndim}]}]}]


def write_lif(path, series):
    """Each array of ``series`` (T, Z, C, Y, X) uint16 as one series of a LIF file."""
    elements, blocks = [], []
    for number, data in enumerate(series, start=1):
        times, depth, channels, height, width = data.shape
        frame = height * width * 2
        dimensions = [(1, width, 2), (2, height, 2 * width), (3, depth, frame * channels),
                      (4, times, frame * channels * depth)]
        described = "".join(f'<DimensionDescription DimID="{i}" NumberOfElements="{n}" BytesInc="{inc}" '
                            f'Length="1e-4"/>' for i, n, inc in dimensions if i < 3 or n > 1)
        channel_list = "".join(f'<ChannelDescription Resolution="16" BytesInc="{frame * c}"/>'
                               for c in range(channels))
        elements.append(f'<Element Name="Series{number:03d}"><Data><Image><ImageDescription>'
                        f'<Channels>{channel_list}</Channels><Dimensions>{described}</Dimensions>'
                        f'</ImageDescription></Image></Data>'
                        f'<Memory Size="{data.nbytes}" MemoryBlockID="MemBlock_{number}"/><Children/></Element>')
        blocks.append((f"MemBlock_{number}", data.astype("<u2").tobytes()))
    xml = ('<LMSDataContainerHeader Version="2"><Element Name="test"><Data><Experiment/></Data>'
           '<Memory Size="0" MemoryBlockID="MemBlock_0"/><Children>' + "".join(elements)
           + "</Children></Element></LMSDataContainerHeader>")
    with open(path, "wb") as f:
        header = xml.encode("utf-16-le")
        f.write(LIF_MAGIC + struct.pack("<I", len(header) + 5) + LIF_MEMORY + struct.pack("<I", len(xml)) + header)
        for name, payload in blocks:
            description = name.encode("utf-16-le")
            f.write(LIF_MAGIC + struct.pack("<I", 0) + LIF_MEMORY + struct.pack("<I", len(payload)) + LIF_MEMORY
                    + struct.pack("<I", len(name)) + description + payload)


def write_nd2(path, data):
    """``data`` (T, Z, C, Y, X) uint16 as an ND2 file: a time loop around a z-stack, C channels per frame."""
    times, depth, channels, height, width = data.shape
    attributes = _clx("SLxImageAttributes", "SLxImageAttributes", [
        _clx("uiWidth", "lx_uint32", width), _clx("uiWidthBytes", "lx_uint32", width * channels * 2),
        _clx("uiHeight", "lx_uint32", height), _clx("uiComp", "lx_uint32", channels),
        _clx("uiBpcInMemory", "lx_uint32", 16), _clx("uiBpcSignificant", "lx_uint32", 16),
        _clx("uiSequenceCount", "lx_uint32", times * depth), _clx("eCompression", "lx_int32", 2)])
    planes = [_clx(f"a{c}", "SLxPicturePlaneDesc", [_clx("uiCompCount", "lx_uint32", 1),
                                                   _clx("sDescription", "CLxStringW", f"channel {c}")])
              for c in range(channels)]
    metadata = _clx("SLxPictureMetadata", "SLxPictureMetadata", [_clx("sPicturePlanes", "SLxPicturePlanes", [
        _clx("uiCount", "lx_uint32", channels), _clx("uiCompCount", "lx_uint32", channels),
        _clx("sPlaneNew", "CLxListVariant", planes)])])
    z_loop = _clx("i0000000000", "SLxExperiment", [_clx("eType", "lx_int32", 4), _clx("uLoopPars", "CLxListVariant", [
        _clx("uiCount", "lx_uint32", depth), _clx("dZStep", "double", 2.0), _clx("dZLow", "double", 0.0),
        _clx("dZHigh", "double", 2.0 * (depth - 1)), _clx("bTopToBottom", "bool", "false")])])
    experiment = _clx("SLxExperiment", "SLxExperiment", [
        _clx("eType", "lx_int32", 1), _clx("uLoopPars", "CLxListVariant", [
            _clx("uiCount", "lx_uint32", times), _clx("dPeriod", "double", 1000.0), _clx("dStart", "double", 0.0),
            _clx("dDuration", "double", 0.0)]),
        _clx("ppNextLevelEx", "CLxListVariant", [z_loop])])
    out = bytearray(_nd2_chunk(b"ND2 FILE SIGNATURE CHUNK NAME01!", b"Ver3.0".ljust(64, b"\0")))
    chunk_map = bytearray()

    def add(name, payload, name_length=None):
        out.extend(b"\0" * (-len(out) % ND2_ALIGNMENT))
        chunk_map.extend(name + struct.pack("<QQ", len(out), len(payload)))
        out.extend(_nd2_chunk(name, payload, name_length))

    for name, variant in ((b"ImageAttributesLV!", attributes), (b"ImageMetadataSeqLV|0!", metadata),
                          (b"ImageMetadataLV!", experiment)):
        add(name, b'<?xml version="1.0" encoding="UTF-8"?><variant version="1.0">' + variant.encode() + b"</variant>")
    for index, frame in enumerate(data.reshape(times * depth, channels, height, width)):
        pixels = frame.transpose(1, 2, 0).astype("<u2").tobytes()  # channels interleaved
        add(f"ImageDataSeq|{index}!".encode(), struct.pack("<d", float(index)) + pixels, ND2_FRAME_NAME_LENGTH)
    out.extend(b"\0" * (-len(out) % ND2_ALIGNMENT))
    location = len(out)
    out.extend(_nd2_chunk(b"ND2 FILEMAP SIGNATURE NAME 0001!", bytes(chunk_map) + ND2_CHUNK_MAP))
    out.extend(ND2_CHUNK_MAP + struct.pack("<Q", location))
    with open(path, "wb") as f:
        f.write(out)


def _nd2_chunk(name, payload, name_length=None):
    name_length = name_length or len(name)
    return struct.pack("<IIQ", ND2_MAGIC, name_length, len(payload)) + name.ljust(name_length, b"\0") + payload


def _clx(tag, runtype, value):
    """One CLx-variant XML node: a value, or (given a list) the nodes it contains."""
    if isinstance(value, list):
        return f'<{tag} runtype="{runtype}">' + "".join(value) + f"</{tag}>"
    return f'<{tag} runtype="{runtype}" value="{value}"/>'
