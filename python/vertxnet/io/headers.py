"""Reading an image file and what its first bytes say: format (by content - DICOM's ``DICM``
at offset 128 first, then magic bytes, else a try as preamble-less DICOM; never by the
extension) and image size (from the PNG, JPEG or TIFF header), before anything is decoded."""

from __future__ import annotations

import os
import stat
import struct

from ..errors import InputError

# Room beyond the pixel payload for headers, metadata, ICC profiles, DICOM overlays and the like.
_FILE_SLACK_BYTES = 16 << 20

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Formats we recognise only to name them in the error.
_OTHER_MAGICS = (
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (b"\xff\x4f\xff\x51", "JPEG 2000 codestream"),
    (b"RIFF", "RIFF/WebP"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
)
# JPEG start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15); DHT (C4), JPG (C8) and DAC (CC) are not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _read_bytes(path: str, max_pixels: int) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot access file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(path, "is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # Reading a FIFO or a device could block forever.
        raise InputError(path, "not a regular file")
    if st.st_size == 0:
        raise InputError(path, "file is empty")
    # Generous: 4 channels x 16 bit at the pixel limit, plus room for headers and metadata.
    max_bytes = 8 * max_pixels + _FILE_SLACK_BYTES
    if st.st_size > max_bytes:
        raise InputError(path, f"file of {st.st_size} bytes exceeds the {max_bytes}-byte limit for images")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise InputError(path, "permission denied") from None
    except OSError as exc:
        raise InputError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise InputError(path, "file is empty")
    return data


def _sniff(data: bytes) -> str | None:
    """Format from the content: dicom | png | jpeg | tiff, or None (maybe preamble-less DICOM).

    DICOM first: ``DICM`` at offset 128 wins over any magic bytes in the 128-byte preamble, which
    PS3.10 leaves to the application - a dual-format file keeps a TIFF header there, and it is
    read as the DICOM it also is."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_frame(data: bytes) -> tuple[tuple[int, int] | None, int]:
    """((width, height) from the start-of-frame segment or None, offset of the first scan or -1).

    Walking the segments skips APP data, so an EXIF thumbnail (a JPEG with its own markers)
    inside APP1 is never mistaken for the main image.
    """
    size: tuple[int, int] | None = None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return size, -1
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers, no length
            i += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return size, -1
        if marker == 0xDA:
            return size, i
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF and size is None:
            if i + 9 > n:
                return None, -1
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            size = (width, height)
        i += 2 + length
    return size, -1


def _tiff_size(data: bytes) -> tuple[tuple[int, int] | None, bool]:
    """((width, height) of the first IFD or None, whether more pages follow)."""
    bo = "<" if data[:2] == b"II" else ">"
    try:
        (magic,) = struct.unpack(bo + "H", data[2:4])
        if magic == 42:
            (off,) = struct.unpack(bo + "I", data[4:8])
            (count,) = struct.unpack(bo + "H", data[off : off + 2])
            first, entry, value_at, next_fmt = off + 2, 12, 8, "I"
        else:  # BigTIFF
            (off,) = struct.unpack(bo + "Q", data[8:16])
            (count,) = struct.unpack(bo + "Q", data[off : off + 8])
            first, entry, value_at, next_fmt = off + 8, 20, 12, "Q"
        dims: dict[int, int] = {}
        for k in range(min(count, 4096)):
            e = first + k * entry
            tag, typ = struct.unpack(bo + "HH", data[e : e + 4])
            if tag in (256, 257):
                fmt = {3: "H", 4: "I", 16: "Q"}.get(typ)
                if fmt is None:
                    return None, False
                (dims[tag],) = struct.unpack_from(bo + fmt, data, e + value_at)
        end = first + count * entry
        (next_ifd,) = struct.unpack(bo + next_fmt, data[end : end + struct.calcsize(next_fmt)])
    except struct.error:
        return None, False
    if 256 not in dims or 257 not in dims:
        return None, False
    return (dims[256], dims[257]), next_ifd != 0


