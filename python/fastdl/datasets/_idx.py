"""Reading IDX files, the format MNIST and Fashion-MNIST are distributed in.

An IDX file is a tiny header followed by the raw array, big-endian:

    bytes 0-1   zero
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions, d
    4*d bytes   the dimensions, each a big-endian uint32
    the rest    the values, row-major, exactly prod(dims) of them

The files are usually gzip-compressed (``*.gz``); ``load_idx`` recognises gzip by its magic
bytes, not by the name.
"""
import gzip
import os
import struct
import zlib

import numpy as np

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {v.newbyteorder("="): k for k, v in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path):
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    return f, f


def _read_exact(f, buf):
    """Fill the writable buffer buf from f; return how many bytes were read (less at EOF)."""
    view = memoryview(buf).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def load_idx(path):
    """Read an IDX file (gzip-compressed or raw) into a NumPy array in native byte order.

    Raises FileNotFoundError if ``path`` does not exist and ValueError, naming the file, when
    it is not an IDX file (bad magic, unknown type code, zero dimensions) or its length does
    not match its header (truncated, or trailing bytes).
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    stream, raw = _open(path)
    try:
        try:
            head = stream.read(4)
            if len(head) < 4:
                raise ValueError(f"{path}: not an IDX file (only {len(head)} bytes)")
            if head[0] != 0 or head[1] != 0:
                raise ValueError(f"{path}: not an IDX file (magic {head.hex()} does not start with 0000)")
            code, ndim = head[2], head[3]
            if code not in IDX_TYPES:
                raise ValueError(f"{path}: not an IDX file (unknown type code 0x{code:02x})")
            if ndim == 0:
                raise ValueError(f"{path}: IDX header gives no dimensions")
            dims_raw = stream.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header ({name} ends inside the dimensions)")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            dtype = IDX_TYPES[code]
            count = 1
            for d in dims:
                count *= d
            if count * dtype.itemsize > (1 << 40):
                raise ValueError(f"{path}: IDX header gives an implausible size {dims}")
            out = np.empty(dims, dtype=dtype)
            got = _read_exact(stream, out)
            if got < out.nbytes:
                raise ValueError(f"{path}: truncated IDX file: header {dims} needs {out.nbytes} data "
                                 f"bytes, found {got}")
            if stream.read(1):
                raise ValueError(f"{path}: IDX file has trailing bytes after the {dims} array")
        except (EOFError, OSError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError; a cut-off gzip stream is an EOFError.
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{path}: corrupt or truncated gzip data ({type(e).__name__}: {e})") from None
    finally:
        stream.close()
        raw.close()
    if dtype.byteorder == ">":
        out = out.astype(dtype.newbyteorder("="))
    return out


def save_idx(path, array, compress=None):
    """Write an array as an IDX file (gzip-compressed when ``compress`` or the name ends in .gz).

    The inverse of ``load_idx``; used by tests and handy for making small IDX files.
    """
    path = os.fspath(path)
    a = np.ascontiguousarray(array)
    native = a.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(f"IDX cannot store dtype {a.dtype}; use one of uint8, int8, int16, int32, "
                        f"float32, float64")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {a.ndim}")
    code = _CODES[native]
    data = (struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
            + a.astype(IDX_TYPES[code], copy=False).tobytes())
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
    return path
