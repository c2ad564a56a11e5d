"""Seeded mutations: byte-level (flips, truncation, interesting values) and format-aware (zip
members dropped, garbled or inflated into bombs; JSON fields retyped; npy, PNG, JPEG and PSD
headers declaring huge sizes)."""
from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from functools import lru_cache

import numpy as np

from .readers import READERS, Reader


# --- mutations --------------------------------------------------------------------------------

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)
_BIG = (0x7FFFFFFF, 0xFFFFFFFF, 1 << 20, 65535)


def _bytes_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    b = bytearray(data)
    n = len(b)
    k = int(rng.integers(7))
    if n == 0:
        return bytes(rng.integers(0, 256, 16, dtype=np.uint8)), "random"
    if k == 0:
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(n))
            b[i] ^= 1 << int(rng.integers(8))
        return bytes(b), "bitflip"
    if k == 1:
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(n))] = _INTERESTING[int(rng.integers(len(_INTERESTING)))]
        return bytes(b), "bytes"
    if k == 2:
        return bytes(b[:int(rng.integers(n))]), "truncate"
    if k == 3:
        i, m = int(rng.integers(n)), int(rng.integers(1, 64))
        b[i:i + m] = rng.integers(0, 256, m, dtype=np.uint8).tobytes()
        return bytes(b), "overwrite"
    if k == 4:
        i, m = int(rng.integers(n)), int(rng.integers(1, 256))
        del b[i:i + m]
        return bytes(b), "delete"
    if k == 5:
        i = int(rng.integers(n))
        return bytes(b[:i] + rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
                     + b[i:]), "insert"
    i = int(rng.integers(max(n - 4, 1)))
    b[i:i + 4] = struct.pack("<I", _BIG[int(rng.integers(len(_BIG)))])
    return bytes(b), "int32"


def _random_json(rng: np.random.Generator, depth: int = 0):
    k = int(rng.integers(9 if depth < 3 else 7))
    if k == 7:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(3)))]
    if k == 8:
        return {"k": _random_json(rng, depth + 1)}
    return (None, True, 1.5, -7, 10 ** 30, "x" * int(rng.integers(0, 300)), float("nan"))[k]


def _json_mutation(text: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    try:
        m = json.loads(text)
    except (ValueError, RecursionError):   # not JSON (any more): bytes it is
        return _bytes_mutation(text, rng)
    k = int(rng.integers(5))
    if not isinstance(m, dict) or not m:
        return json.dumps(_random_json(rng)).encode(), "json-replace"
    key = list(m)[int(rng.integers(len(m)))]
    if k == 0:
        m[key] = _random_json(rng)
        what = "json-retype"
    elif k == 1:
        del m[key]
        what = "json-drop"
    elif k == 2 and isinstance(m[key], dict) and m[key]:
        sub = list(m[key])[int(rng.integers(len(m[key])))]
        m[key][sub] = _random_json(rng)
        what = "json-retype-inner"
    elif k == 2 and isinstance(m[key], list) and m[key] and isinstance(m[key][0], dict):
        entry = m[key][int(rng.integers(len(m[key])))]   # e.g. one paint layer of layers.json
        if entry and rng.integers(3):
            entry[list(entry)[int(rng.integers(len(entry)))]] = _random_json(rng)
        else:
            m[key].append(_random_json(rng))
        what = "json-retype-entry"
    elif k == 3:
        return (b"[" * 100000 + b"]" * 100000), "json-deep"
    else:
        m[key] = "\ud800" if rng.integers(2) else "__HUGE__"
        what = "json-huge"
    try:   # a 5000-digit number, beyond Python's int parsing limit
        return json.dumps(m).replace('"__HUGE__"', "9" * 5000).encode("utf-8", "surrogatepass"), what
    except (ValueError, TypeError):
        return json.dumps(str(m)).encode(), what


def _jsonl_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One line of a JSON-lines file mutated as JSON (or a line dropped, doubled, cut)."""
    lines = data.split(b"\n")
    i = int(rng.integers(max(1, len(lines) - 1)))
    k = int(rng.integers(4))
    if k == 0:
        lines[i], what = _json_mutation(lines[i], rng)
        return b"\n".join(lines), f"jsonl-{what}"
    if k == 1:
        lines.insert(i, lines[i])
        return b"\n".join(lines), "jsonl-duplicate-line"
    if k == 2:
        lines[i] = lines[i][:int(rng.integers(len(lines[i]) + 1))]
        return b"\n".join(lines), "jsonl-cut-line"
    return b"\n".join(lines[:i] + lines[i + 1:]), "jsonl-drop-line"


def _csv_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A CSV cell replaced by something a hand-edited manifest may hold, or the rows reshaped."""
    lines = data.split(b"\n")
    i = int(rng.integers(max(1, len(lines) - 1)))
    cells = lines[i].split(b",")
    j = int(rng.integers(len(cells)))
    junk = [b'"', b'"unterminated', b"9" * 5000, b"nan", b"-1e309", b"1.5", b"\x00", b"\xff\xfe", b"a,b,c,d,e,f,g,h,i",
            b"x" * 70000, b"../../etc/passwd", b"", b"true", b"\r"]
    k = int(rng.integers(3))
    if k == 0:
        cells[j] = junk[int(rng.integers(len(junk)))]
        lines[i] = b",".join(cells)
        return b"\n".join(lines), f"csv-cell-{j}"
    if k == 1:
        lines.insert(i, lines[i])
        return b"\n".join(lines), "csv-duplicate-row"
    return b"\n".join(lines[:i] + lines[i + 1:]), "csv-drop-row"


def _npy_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    shapes = [b"(100000000000,)", b"(2000000000, 2000000000)", b"(-1,)", b"()", b"(3,", b"(0,)"]
    dtypes = [b"'|O'", b"'<c16'", b"'>f8'", b"'<U9'", b"'V8'", b"'<f2'"]
    head_end = data.find(b"\n")
    head = data[:head_end]
    # find(), not index(): a stacked mutation may meet a header an earlier one already broke
    i, j = head.find(b"'shape': "), -1
    if rng.integers(2) and i >= 0 and (j := head.find(b")", i + 9)) >= 0:
        head = head[:i + 9] + shapes[int(rng.integers(len(shapes)))] + head[j + 1:]
        what = "npy-shape"
    elif (i := head.find(b"'descr': ")) >= 0 and (j := head.find(b",", i + 9)) >= 0:
        head = head[:i + 9] + dtypes[int(rng.integers(len(dtypes)))] + head[j:]
        what = "npy-dtype"
    else:
        return _bytes_mutation(data, rng)
    body = head[10:]
    return data[:8] + struct.pack("<H", len(body) + 1) + body + data[head_end:], what


def _png_dims(data: bytes, rng) -> tuple[bytes, str]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return _bytes_mutation(data, rng)
    w, h = [(100000, 100000), (1, 10 ** 8), (0, 0), (65535, 65535)][int(rng.integers(4))]
    ihdr = b"IHDR" + struct.pack(">II", w, h) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:], "png-dims"


def _jpeg_dims(data: bytes, rng) -> tuple[bytes, str]:
    i = data.find(b"\xff\xc0")
    if i < 0:
        return _bytes_mutation(data, rng)
    h, w = [(65535, 65535), (0, 0), (1, 65535)][int(rng.integers(3))]
    return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:], "jpeg-dims"


def _psd_header(data: bytes, rng) -> tuple[bytes, str]:
    """A PSD header declaring other dimensions, depth, channels or colour mode (big-endian:
    signature 4, version 2, reserved 6, channels 2, height 4, width 4, depth 2, mode 2)."""
    if data[:4] != b"8BPS" or len(data) < 26:
        return _bytes_mutation(data, rng)
    b = bytearray(data)
    k = int(rng.integers(4))
    if k == 0:
        h, w = [(30000, 30000), (1, 30000), (0, 0), (16384, 16384), (300000, 300000)][int(rng.integers(5))]
        b[14:22] = struct.pack(">II", h, w)
        return bytes(b), f"psd-dims {w}x{h}"
    if k == 1:
        b[22:24] = struct.pack(">H", (1, 16, 32, 0, 255)[int(rng.integers(5))])
        return bytes(b), "psd-depth"
    if k == 2:
        b[12:14] = struct.pack(">H", (0, 1, 56, 65535)[int(rng.integers(4))])
        return bytes(b), "psd-channels"
    b[24:26] = struct.pack(">H", (0, 1, 2, 4, 7, 9, 99)[int(rng.integers(7))])
    return bytes(b), "psd-mode"


_BOMB: dict[int, tuple[bytes, int]] = {}


def _bomb(size: int = 256 << 20) -> tuple[bytes, int]:
    """A deflate stream of `size` zero bytes (about 250 KB for 256 MB) and its CRC, made once."""
    if size not in _BOMB:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(1 << 20)
        crc = 0
        for _ in range(size >> 20):
            crc = zlib.crc32(chunk, crc)
        _BOMB[size] = (b"".join(c.compress(chunk) for _ in range(size >> 20)) + c.flush(), crc)
    return _BOMB[size]


@lru_cache(maxsize=4)
def _zip_items(data: bytes) -> tuple:
    """The members of a zip (cached: most cases mutate the same few samples, and decompressing a
    model file of several MB each time dominated those readers' cases)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    if sum(i.file_size for i in src.infolist()) > 64 << 20:   # already a bomb: keep it cheap
        raise ValueError("too large to rewrite")
    return tuple((i, src.read(i)) for i in src.infolist())


def _zip_mutation(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    try:
        items = list(_zip_items(data))
    except Exception:
        return _bytes_mutation(data, rng)
    if not items:          # an empty archive (a mutant of a mutant): nothing to pick from
        return _bytes_mutation(data, rng)
    k = int(rng.integers(7))
    j = int(rng.integers(len(items)))
    info, payload = items[j]
    name = info.filename
    if k == 0:
        del items[j]
        what = f"zip-drop {name}"
    elif k == 1:
        if name.endswith(".json"):
            payload, what = _json_mutation(payload, rng)
        elif name.endswith(".npy"):
            payload, what = _npy_mutation(payload, rng)
        elif name.endswith(".png"):
            payload, what = _png_dims(payload, rng)
        else:
            payload, what = _bytes_mutation(payload, rng)
        items[j] = (info, payload)
        what = f"zip-member {name}: {what}"
    elif k == 2:
        items[j] = (info, _bytes_mutation(payload, rng)[0])
        what = f"zip-garble {name}"
    elif k == 3:
        items.append((zipfile.ZipInfo(name + "x" if rng.integers(2) else name), b"dup"))
        what = "zip-extra"
    elif k == 4:   # a member whose declared and real size is huge: a zip bomb
        return _add_bomb(data, name), f"zip-bomb {name}"
    elif k == 5:   # the directory declares a huge size for a small member
        out = bytearray(_write_zip(items))
        cd = out.rfind(b"PK\x01\x02")
        if cd >= 0:
            out[cd + 24:cd + 28] = struct.pack("<I", 0xFFFFFFF0)
        return bytes(out), "zip-size-field"
    else:
        return _bytes_mutation(data, rng)[0], "zip-bytes"
    return _write_zip(items), what


def _write_zip(items) -> bytes:
    out = io.BytesIO()
    # members stored, not deflated: the mutant's structure is what matters (the sample's own
    # deflate streams meet the byte mutations), and deflating a model file of several MB again
    # for every case cost most of its time
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for info, payload in items:
            zi = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            zf.writestr(zi, payload)
    return out.getvalue()


def _add_bomb(data: bytes, name: str, size: int = 256 << 20) -> bytes:
    """Replace member `name` by `size` zero bytes (deflated: ~1/1000 of that), written by hand so
    the stream is made once."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    central = []
    for info in src.infolist():
        if info.filename == name:
            (comp, ucrc), usize, method = _bomb(size), size, 8       # deflated
        else:
            comp = src.read(info)                                    # the others stored
            usize, ucrc, method = len(comp), zlib.crc32(comp), 0
        fn = info.filename.encode()
        off = out.tell()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0, ucrc, len(comp), usize,
                              len(fn), 0) + fn + comp)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0, ucrc,
                                   len(comp), usize, len(fn), 0, 0, 0, 0, 0, off) + fn)
    cd_off = out.tell()
    cd = b"".join(central)
    out.write(cd + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), len(cd),
                               cd_off, 0))
    return out.getvalue()


def mutate(reader: Reader, sample: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutant of `sample` and a short name for what was done."""
    structured = rng.random() < 0.6
    if structured and reader.kind == "zip":
        return _zip_mutation(sample, rng)
    if structured and reader.kind == "psd" and rng.random() < 0.5:   # else bytes: the layer records
        return _psd_header(sample, rng)
    if structured and reader.kind == "image":
        return (_png_dims if sample[:4] == b"\x89PNG" else _jpeg_dims)(sample, rng)
    if structured and reader.kind == "json":
        return _json_mutation(sample, rng)
    if structured and reader.kind == "jsonl":
        return _jsonl_mutation(sample, rng)
    if structured and reader.kind == "csv":
        return _csv_mutation(sample, rng)
    return _bytes_mutation(sample, rng)


def make_case(reader: Reader, samples: list[bytes], seed: int, index: int) -> tuple[bytes, str]:
    rng = np.random.default_rng([seed, list(READERS).index(reader.name), index])
    sample = samples[int(rng.integers(len(samples)))]
    data, what = mutate(reader, sample, rng)
    if rng.random() < 0.15:      # sometimes two mutations stacked
        data, what2 = mutate(reader, data, rng)
        what = f"{what} + {what2}"
    return data, what
