"""JPEG 2000 frames decoded at a reduced resolution: OpenJPEG discards the finest wavelet levels
(``cp_reduce``), so a film decoded 8 times smaller costs a small fraction of the full decode.

The binding is glymur (ctypes over the system's libopenjp2, Debian's ``libopenjp2-7``): it
exposes the reduce factor and OpenJPEG's threads. It reads files only, so the frame goes through
a temporary file (a few MB, a millisecond). Where glymur finds no libopenjp2, Pillow's JPEG 2000
plugin (its wheels ship OpenJPEG) decodes from memory instead, but Pillow rounds the reduced size
to the nearest pixel where OpenJPEG takes the ceiling, and refuses the frame ("broken data
stream") whenever the two differ - for a reduce of 4, any side of 4k + 1 pixels, such as the 2949
rows of a common lumbar DICOM. It is therefore used only at the largest reduce it sizes right
(at worst 2). pylibjpeg-openjpeg, which pydicom uses for the full-resolution pixels, has no
reduce option.

The full-resolution frame, when it is decoded beside the networks, goes through OpenCV's
``imdecode`` (its wheels ship OpenJPEG too; :func:`decode_full`): OpenCV releases the GIL for the
whole decode, while pylibjpeg-openjpeg holds it throughout and Pillow most of the time (measured:
another Python thread kept 100 %, 3 % and about 25 % of its speed), and a GIL held for the
400 ms of a 1168 x 2874 frame stalls the pipeline's own threads. glymur's ctypes calls release it.

OpenJPEG decodes code-blocks on ``OPJ_NUM_THREADS`` threads (its own environment variable, read
at every decode, in the copies Pillow and OpenCV ship; glymur is given the same number): unless
the user has set it, the first JPEG 2000 decode here sets it to the number of cores this process
may use (2 cores: the full frame above in 206 instead of 403 ms).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile

import numpy as np

from ..preprocess import Reduced

#: DICOM transfer syntaxes whose frames are JPEG 2000 codestreams Pillow decodes (not HTJ2K).
JPEG2000_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"})

_SOC, _SOT, _SIZ, _COD, _COC = 0xFF4F, 0xFF90, 0xFF51, 0xFF52, 0xFF53


def codestream_header(frame: bytes) -> dict[str, int]:
    """Size, precision, signedness, components and the fewest decomposition levels of any
    component, read from the codestream's main header (SIZ, COD, COC); ValueError if malformed."""
    if len(frame) < 4 or struct.unpack(">H", frame[:2])[0] != _SOC:
        raise ValueError("not a JPEG 2000 codestream (no SOC marker)")
    pos, info, levels = 2, {}, []
    while pos + 4 <= len(frame):
        marker, length = struct.unpack(">HH", frame[pos : pos + 4])
        body = frame[pos + 4 : pos + 2 + length]
        if marker == _SOT:
            break
        if marker == _SIZ:
            xsiz, ysiz, x0, y0 = struct.unpack(">IIII", body[2:18])
            components = struct.unpack(">H", body[34:36])[0]
            ssiz = body[36]
            info.update(width=xsiz - x0, height=ysiz - y0, x0=x0, y0=y0, components=components,
                        precision=(ssiz & 0x7F) + 1, signed=ssiz >> 7)  # fmt: skip
        elif marker == _COD:
            levels.append(body[5])  # Scod, SGcod (4 bytes), then SPcod: decomposition levels
        elif marker == _COC:
            offset = 1 if info.get("components", 0) < 257 else 2
            levels.append(body[offset + 1])
        pos += 2 + length
    if "width" not in info or not levels:
        raise ValueError("JPEG 2000 main header has no SIZ or COD segment")
    info["levels"] = min(levels)
    return info


def _openjpeg_threads() -> None:
    """Let OpenJPEG use every core this process may run on, unless the user chose (see above)."""
    if "OPJ_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        os.environ["OPJ_NUM_THREADS"] = str(max(1, cores))


def _plain_gray(head: dict[str, int], width: int, height: int) -> bool:
    """Whether the codestream is what both decoders here handle: the DICOM's Rows x Columns,
    no image offset, one unsigned component of at most 16 bits."""
    return ((head["width"], head["height"]) == (width, height) and not head["x0"] and not head["y0"]
            and head["components"] == 1 and not head["signed"] and head["precision"] <= 16)


def decode_reduced(frame: bytes, factor: int, width: int, height: int, dtype: type) -> Reduced | None:
    """The stored values of a one-component JPEG 2000 frame, ``factor`` (a power of two) times
    smaller, as a :class:`Reduced` (phase 0.5: OpenJPEG keeps the even low-pass samples); None
    when it cannot be reduced (fewer decomposition levels, an image offset, signed or colour
    data, a frame whose size is not the DICOM Rows/Columns). Without glymur's libopenjp2 the
    factor may come out smaller than asked (see the module's note on Pillow)."""
    head = codestream_header(frame)
    reduce = int(factor).bit_length() - 1
    if not _plain_gray(head, width, height) or reduce > head["levels"]:
        return None
    _openjpeg_threads()
    pixels = _glymur_reduced(frame, reduce)
    if pixels is None:
        reduce = pillow_sized_reduce(width, height, reduce)
        if reduce == 0:
            return None
        pixels = _pillow_reduced(frame, reduce, head["precision"])
    factor = 1 << reduce
    expect = (-(-height // factor), -(-width // factor))
    if pixels.shape != expect:
        return None
    return Reduced(np.ascontiguousarray(pixels, dtype=dtype), factor, 0.5, width, height)


def _glymur_reduced(frame: bytes, reduce: int) -> np.ndarray | None:
    """The frame at resolution level ``reduce`` through glymur, or None without its libopenjp2."""
    try:
        import glymur
        from glymur.lib import openjp2
    except ImportError:
        return None
    if getattr(openjp2, "OPENJP2", None) is None:
        return None
    glymur.set_option("lib.num_threads", int(os.environ.get("OPJ_NUM_THREADS", "1") or 1))
    with tempfile.NamedTemporaryFile(suffix=".j2k") as f:
        f.write(frame)
        f.flush()
        step = 1 << reduce
        return np.asarray(glymur.Jp2k(f.name)[::step, ::step])


def pillow_sized_reduce(width: int, height: int, reduce: int) -> int:
    """The largest reduce level <= ``reduce`` whose size Pillow computes as OpenJPEG does (its
    rounding equals the ceiling on both sides); 1 always qualifies."""
    def right(n: int, r: int) -> bool:
        power = 1 << r
        return (n + (power >> 1)) // power == -(-n // power)

    while reduce > 1 and not (right(width, reduce) and right(height, reduce)):
        reduce -= 1
    return reduce


def _pillow_reduced(frame: bytes, reduce: int, precision: int) -> np.ndarray:
    from PIL import Image

    image = Image.open(io.BytesIO(frame), formats=["JPEG2000"])
    image.reduce = reduce
    image.load()
    pixels = np.asarray(image)
    if image.mode.startswith("I;16") and precision < 16:
        pixels = pixels >> (16 - precision)  # Pillow scales fewer bits up to 16
    return pixels


def decode_full(frame: bytes, width: int, height: int, dtype: type) -> np.ndarray | None:
    """The stored values of a one-component, unsigned JPEG 2000 frame at full resolution through
    OpenCV (the GIL released throughout); None when OpenCV cannot give exactly those (signed or
    colour data, an image offset, another size, values beyond the codestream's precision), and
    pydicom's plugins decode it instead."""
    import cv2

    from .raster import _quiet_opencv

    try:
        head = codestream_header(frame)
    except ValueError:
        return None  # not a codestream we can read: pydicom's plugins give the reason
    if not _plain_gray(head, width, height):
        return None
    _openjpeg_threads()
    with _quiet_opencv():
        pixels = cv2.imdecode(np.frombuffer(frame, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.shape != (height, width) or pixels.dtype.kind != "u":
        return None
    if int(pixels.max()) >= 1 << head["precision"]:
        return None
    return pixels.astype(dtype, copy=False)
