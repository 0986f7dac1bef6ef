#!/usr/bin/env python3
"""gen_image_goldens.py - test images and Pillow goldens for tests/unit/test_image.c (lib/image).

Writes tests/data/image/:
  * small PNGs: RGB, RGBA, grey (1/2/4/8/16-bit), grey+alpha (8/16-bit), palette
    (with and without tRNS), 16-bit RGB/RGBA, Adam7-interlaced; the ones Pillow cannot
    write are made by the tiny PNG writer below (zlib + CRC, filter 0);
  * JPEGs: baseline 4:2:0 and 4:4:4, progressive, greyscale, CMYK (Adobe), and one per
    EXIF orientation 2..8;
  * two decompression bombs (headers that claim 50,000 x 50,000 / 60,000 x 60,000);
  * goldens.json + goldens.bin.zst: for each image what
    `ImageOps.exif_transpose(Image.open(f)).convert("RGB")` gives (mlx-vlm's load_image);
    `Image.resize((w, h), filter, reducing_gap=None)` of some of them for every filter
    and several target sizes (down, up, extreme ratios, one axis only, same size), plus
    60 random sizes and filters; the same for a few cases under Pillow <= 12 (whose pass
    order differs) when $PIL12_PYTHON (default /work/venv-vlm12/bin/python) exists; and
    the HF PIL-backend rescale (float64 x 1/255 -> float32) + normalize (float32) of one
    resized image, CHW.  goldens.bin holds the raw bytes; the JSON gives offsets.

Run from the repository root: /work/venv-vlm/bin/python tests/gen/gen_image_goldens.py
Needs: pillow 13, numpy, zstd (the command); optionally a second Python with pillow<13.
The larger JPEGs (large_*) keep only an FNV-1a 64 hash of their decoded bytes.
"""
import io
import json
import os
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image, ImageOps

OUT = "tests/data/image"
rng = np.random.default_rng(19)


def content(w, h, ch=3):
    """Smooth gradients + edges + noise: something every filter treats differently."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(ch):
        p = 128 + 100 * np.sin((x * (c + 1) * 0.31) + y * 0.17 * (c + 2))
        p += np.where((x + 2 * y) % 11 < 4, 60, -40)
        p += rng.normal(0, 25, size=(h, w))
        planes.append(p)
    a = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    return a if ch > 1 else a[..., 0]


def smooth(w, h):
    """A photo-like smooth image (compresses well): large files stay small on disk."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = np.stack([128 + 110 * np.sin(x / 23 + c) * np.cos(y / 17 - c) + 10 * np.sin(x * y / 300)
                  for c in range(3)], -1)
    return np.clip(a, 0, 255).astype(np.uint8)


def fnv1a64(b):
    """FNV-1a 64 over bytes: the decode goldens of the larger images store only this."""
    h = 0xCBF29CE484222325
    for byte in b:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def png_chunk(t, data):
    c = t + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def png_write(path, rows_fn, w, h, bitdepth, colortype, interlace=False, plte=None, trns=None):
    """rows_fn(x0, dx, y0, dy) -> bytes of the (packed) scanlines of that sub-image."""
    raw = b""
    if interlace:
        passes = [(0, 8, 0, 8), (4, 8, 0, 8), (0, 4, 4, 8), (2, 4, 0, 4), (0, 2, 2, 4), (1, 2, 0, 2), (0, 1, 1, 2)]
        for (x0, dx, y0, dy) in passes:
            if x0 >= w or y0 >= h:
                continue
            raw += rows_fn(x0, dx, y0, dy)
    else:
        raw = rows_fn(0, 1, 0, 1)
    s = b"\x89PNG\r\n\x1a\n"
    s += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bitdepth, colortype, 0, 0, 1 if interlace else 0))
    if plte is not None:
        s += png_chunk(b"PLTE", plte)
    if trns is not None:
        s += png_chunk(b"tRNS", trns)
    s += png_chunk(b"IDAT", zlib.compress(raw, 9))
    s += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(s)


def rows_from_array(arr, bitdepth):
    """arr: h x w x ch integer samples. Returns a rows_fn with filter byte 0 per row."""
    h, w = arr.shape[:2]

    def fn(x0, dx, y0, dy):
        out = b""
        for y in range(y0, h, dy):
            sub = arr[y, x0::dx].reshape(-1)
            if bitdepth == 16:
                line = sub.astype(">u2").tobytes()
            elif bitdepth == 8:
                line = sub.astype(np.uint8).tobytes()
            else:
                per = 8 // bitdepth
                vals = list(sub) + [0] * ((-len(sub)) % per)
                line = bytes(
                    sum(int(vals[i + k]) << (8 - bitdepth * (k + 1)) for k in range(per))
                    for i in range(0, len(vals), per))
            out += b"\x00" + line
        return out
    return fn


def make_images():
    files = []

    def save(img, name, **kw):
        img.save(os.path.join(OUT, name), **kw)
        files.append(name)

    save(Image.fromarray(content(64, 48)), "rgb_64x48.png")
    save(Image.fromarray(content(1, 1)), "rgb_1x1.png")
    save(Image.fromarray(content(3, 7)), "rgb_3x7.png")
    save(Image.fromarray(content(7, 3)), "rgb_7x3.png")
    save(Image.fromarray(content(33, 17, 4), "RGBA"), "rgba_33x17.png")
    save(Image.fromarray(content(20, 13, 1), "L"), "grey_20x13.png")
    la = content(19, 11, 2)
    save(Image.fromarray(la, "LA"), "greyalpha_19x11.png")
    pal = Image.fromarray(content(23, 9)).quantize(colors=13)
    save(pal, "palette_23x9.png")
    pal2 = Image.fromarray(content(17, 5)).quantize(colors=4)
    save(pal2, "palette_trns_17x5.png", transparency=1)
    save(Image.fromarray(content(21, 6, 1) > 128).convert("1"), "bilevel_21x6.png")

    def manual(name, arr, bitdepth, colortype, **kw):
        h, w = arr.shape[:2]
        png_write(os.path.join(OUT, name), rows_from_array(arr, bitdepth), w, h, bitdepth, colortype, **kw)
        files.append(name)

    g16 = (rng.integers(0, 65536, size=(9, 11, 1))).astype(np.uint32)
    g16[0, :4, 0] = [0, 200, 255, 256]   # around the 8-bit clip of I;16 -> L
    manual("grey16_11x9.png", g16, 16, 0)
    manual("greyalpha16_6x5.png", rng.integers(0, 65536, size=(5, 6, 2)), 16, 4)
    manual("rgb16_10x7.png", rng.integers(0, 65536, size=(7, 10, 3)), 16, 2)
    manual("rgba16_5x8.png", rng.integers(0, 65536, size=(8, 5, 4)), 16, 6)
    manual("grey2_13x5.png", rng.integers(0, 4, size=(5, 13, 1)), 2, 0)
    manual("grey4_9x4.png", rng.integers(0, 16, size=(4, 9, 1)), 4, 0)
    manual("interlaced_rgb_29x19.png", content(29, 19).astype(np.uint32), 8, 2, interlace=True)
    manual("interlaced_rgba16_11x13.png", rng.integers(0, 65536, size=(13, 11, 4)), 16, 6, interlace=True)
    manual("interlaced_grey_1x1.png", np.array([[[77]]]), 8, 0, interlace=True)
    plte = bytes(rng.integers(0, 256, size=16 * 3).astype(np.uint8))
    manual("palette4_interlaced_15x10.png", rng.integers(0, 16, size=(10, 15, 1)), 4, 3,
           interlace=True, plte=plte)

    base = Image.fromarray(content(64, 48))
    save(base, "baseline_64x48.jpg", quality=90)
    save(base, "baseline444_64x48.jpg", quality=95, subsampling=0)
    save(Image.fromarray(content(37, 23)), "progressive_37x23.jpg", quality=85, progressive=True)
    save(Image.fromarray(content(3, 7)), "tiny_3x7.jpg", quality=90)
    save(Image.fromarray(content(27, 14)), "sub422_27x14.jpg", quality=90, subsampling=1)
    save(Image.fromarray(smooth(320, 240)), "large_320x240.jpg", quality=80)
    save(Image.fromarray(smooth(301, 203)), "large_prog_301x203.jpg", quality=75, progressive=True)
    save(Image.fromarray(content(31, 18, 1), "L"), "grey_31x18.jpg", quality=90)
    save(Image.fromarray(content(16, 12, 4), "CMYK"), "cmyk_16x12.jpg", quality=90)
    eximg = Image.fromarray(content(13, 7))
    for o in range(2, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        save(eximg, f"exif{o}_13x7.jpg", quality=90, exif=ex.tobytes())
    ex = Image.Exif()
    ex[0x0112] = 6
    save(eximg, "exif6_13x7.png", exif=ex.tobytes())   # an eXIf chunk before IDAT
    # the other places Pillow's exif_transpose finds an orientation
    def xmp(attr, o):
        t = (f'<tiff:Orientation>{o}</tiff:Orientation>' if not attr else f'tiff:Orientation="{o}"')
        return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
                b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" ' + (t.encode() if attr else b'>' + t.encode())
                + (b'/>' if attr else b'</rdf:Description>') + b'</rdf:RDF></x:xmpmeta>')
    save(eximg, "xmp6_13x7.jpg", quality=90, xmp=xmp(True, 6))
    ex = Image.Exif()
    ex[0x0110] = "camera"   # EXIF without an orientation: XMP's counts
    save(eximg, "exifnoorient_xmp8_13x7.jpg", quality=90, exif=ex.tobytes(), xmp=xmp(False, 8))
    ex = Image.Exif()
    ex[0x0112] = 1          # EXIF says 1: XMP's 6 is ignored
    save(eximg, "exif1_xmp6_13x7.jpg", quality=90, exif=ex.tobytes(), xmp=xmp(True, 6))
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp(False, 7).decode())
    save(eximg, "xmp7_13x7.png", pnginfo=info)
    ex = Image.Exif()
    ex[0x0112] = 3
    raw = b"Exif\0\0" + ex.tobytes()
    hx = raw.hex()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif",
                  f"\nexif\n{len(raw):8d}\n" + "\n".join(hx[i:i + 72] for i in range(0, len(hx), 72)) + "\n", zip=True)
    save(eximg, "rawprofile3_13x7.png", pnginfo=info)
    # an eXIf chunk after IDAT (Pillow loads the file before reading EXIF), holding the
    # "Exif\\0\\0" header old Pillow versions wrote there (Pillow reads it; libpng refuses it)
    buf = io.BytesIO()
    eximg.save(buf, "PNG")
    b = buf.getvalue()
    ex = Image.Exif()
    ex[0x0112] = 5
    iend = b.rindex(b"IEND") - 4
    open(os.path.join(OUT, "exif5_late_13x7.png"), "wb").write(b[:iend] + png_chunk(b"eXIf", ex.tobytes()) + b[iend:])
    files.append("exif5_late_13x7.png")
    return files


def make_bombs():
    # PNG whose IHDR claims 50,000 x 50,000 (2.5e9 pixels) followed by a tiny IDAT
    png_write(os.path.join(OUT, "bomb_50000x50000.png"),
              lambda *a: b"\x00\x00\x00\x00", 50000, 50000, 8, 0)
    # a real JPEG with its SOF0 height/width patched to 60,000 x 60,000
    b = bytearray(open(os.path.join(OUT, "tiny_3x7.jpg"), "rb").read())
    i = 2
    while i < len(b):
        assert b[i] == 0xFF
        m, ln = b[i + 1], (b[i + 2] << 8) | b[i + 3]
        if m in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", b, i + 5, 60000, 60000)
            break
        i += 2 + ln
    open(os.path.join(OUT, "bomb_60000x60000.jpg"), "wb").write(bytes(b))


PIL12_CASES = [(src, w, h, f) for (src, w, h) in
               [("rgb_64x48.png", 301, 2), ("rgb_64x48.png", 20, 6), ("rgb_3x7.png", 2, 3),
                ("rgb_3x7.png", 40, 5), ("progressive_37x23.jpg", 200, 3), ("rgb_64x48.png", 16, 12)]
               for f in range(1, 6)]


def pil12_resizes():
    """Run under a Python with Pillow <= 12: the PIL12_CASES resizes, raw, after a version line."""
    import sys
    import PIL
    out = sys.stdout.buffer
    out.write(PIL.__version__.encode() + b"\n")
    for (src, w, h, filt) in PIL12_CASES:
        im = ImageOps.exif_transpose(Image.open(os.path.join(OUT, src))).convert("RGB")
        out.write(np.asarray(im.resize((w, h), filt, reducing_gap=None)).tobytes())


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    files = make_images()
    make_bombs()
    blob = bytearray()
    gold = {"decode": [], "resize": [], "normalize": []}

    def put(b):
        off = len(blob)
        blob.extend(b)
        return off

    decoded = {}
    for name in files:
        im = Image.open(os.path.join(OUT, name))
        mode = im.mode
        rgb = ImageOps.exif_transpose(im).convert("RGB")
        arr = np.asarray(rgb)
        decoded[name] = rgb
        entry = {"file": name, "pil_mode": mode, "w": rgb.width, "h": rgb.height}
        if name.startswith("large_"):
            entry["fnv1a64"] = fnv1a64(arr.tobytes())
        else:
            entry["offset"] = put(arr.tobytes())
        gold["decode"].append(entry)

    main_targets = [(16, 12), (7, 5), (1, 1), (80, 61), (64, 1), (1, 48), (3, 200), (64, 20), (30, 48),
                    (5, 300), (301, 2)]
    small_targets = [(1, 1), (2, 3), (9, 4), (12, 29), (40, 5)]
    plan = [("rgb_64x48.png", main_targets),
            ("progressive_37x23.jpg", [(16, 12), (7, 23), (37, 9), (50, 31), (1, 23), (200, 3)]),
            ("rgb_3x7.png", small_targets), ("rgb_1x1.png", small_targets),
            ("palette_23x9.png", [(23, 9), (11, 4), (46, 18)])]
    for src, targets in plan:
        im = decoded[src]
        for (w, h) in targets:
            for filt in range(6):
                r = im.resize((w, h), filt, reducing_gap=None)
                gold["resize"].append({"src": src, "filter": filt, "w": w, "h": h,
                                       "offset": put(np.asarray(r).tobytes())})

    # random sizes (small outputs) with random filters, from the 64x48 image
    for _ in range(60):
        w, h = int(rng.integers(1, 60)), int(rng.integers(1, 40))
        filt = int(rng.integers(0, 6))
        r = decoded["rgb_64x48.png"].resize((w, h), filt, reducing_gap=None)
        gold["resize"].append({"src": "rgb_64x48.png", "filter": filt, "w": w, "h": h,
                               "offset": put(np.asarray(r).tobytes())})

    # Pillow <= 12 (horizontal pass always first), if a Python with it is at hand
    py12 = os.environ.get("PIL12_PYTHON", "/work/venv-vlm12/bin/python")
    gold["resize_pil12"] = []
    if os.path.exists(py12):
        raw = subprocess.run([py12, __file__, "--pil12"], check=True, capture_output=True).stdout
        ver, rest = raw.split(b"\n", 1)
        gold["pil12_version"] = ver.decode()
        pos = 0
        for (src, w, h, filt) in PIL12_CASES:
            n = w * h * 3
            gold["resize_pil12"].append({"src": src, "filter": filt, "w": w, "h": h,
                                         "offset": put(rest[pos:pos + n])})
            pos += n

    # HF PIL backend: resize (uint8) -> rescale float64*scale -> float32 -> normalize float32 (CHW)
    clip_mean, clip_std = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
    for (src, w, h, filt, mean, std) in [("rgb_64x48.png", 28, 21, 3, clip_mean, clip_std),
                                         ("baseline_64x48.jpg", 17, 17, 1, [0.5] * 3, [0.5] * 3)]:
        r = decoded[src].resize((w, h), filt, reducing_gap=None)
        a = np.transpose(np.asarray(r), (2, 0, 1))
        a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
        m = np.array(mean, dtype=np.float32)[:, None, None]
        s = np.array(std, dtype=np.float32)[:, None, None]
        a = (a - m) / s
        assert a.dtype == np.float32
        gold["normalize"].append({"src": src, "filter": filt, "w": w, "h": h, "mean": mean, "std": std,
                                  "scale": 1 / 255, "offset": put(a.astype("<f4").tobytes())})

    gold["bin_size"] = len(blob)
    with open(os.path.join(OUT, "goldens.bin"), "wb") as f:
        f.write(blob)
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", os.path.join(OUT, "goldens.bin")], check=True)
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(gold, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    print(f"{len(files)} images, {len(gold['resize'])} resizes, {len(blob)} golden bytes, {total} bytes on disk")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--pil12"]:
        pil12_resizes()
    else:
        main()
