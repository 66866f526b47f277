"""Colour-managed sources and their LittleCMS references, for tests/it/colour.rs.

usage: colour_sources.py ROCKET.jpg OUT_DIR

Writes, for each of Display P3, Adobe RGB (1998) and a CMYK profile:
  <name>.icc          the profile
  <name>.<png|jpg>    a photo (plus saturated patches) tagged with it
  <name>.ref.png      Pillow's ImageCms (LittleCMS 2) conversion of the
                      decoded source to sRGB, relative colorimetric
Display P3 has no profile in Debian's packages, so it is written here from
its definition (SMPTE EG 432-1 primaries, D65, the sRGB curve), Bradford-
adapted to D50 as ICC v2 requires. Adobe RGB comes from colord-data, CMYK
from Ghostscript's libgs-common (default_cmyk.icc, a LUT-based profile).
"""
import io
import struct
import sys

import numpy as np
from PIL import Image, ImageCms

rocket, out = sys.argv[1], sys.argv[2]


def s15(v):
    return struct.pack(">i", int(round(v * 65536)))


def xyz_tag(xyz):
    return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in xyz)


def desc_tag(text):
    t = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(t)) + t + b"\0" * 12 + b"\0" * 67


def para_srgb():
    # ICC parametric curve type 3: the sRGB transfer function.
    g, a, b, c, d = 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045
    return b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(s15(v) for v in (g, a, b, c, d))


def matrix_profile(name, primaries, white):
    """An ICC v2-style matrix/TRC RGB display profile (colorants adapted to D50)."""
    xy = np.array(primaries)
    XYZ = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in xy]).T
    wx, wy = white
    W = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    S = np.linalg.solve(XYZ, W)
    M = XYZ * S  # columns: R, G, B in XYZ (D65)
    brad = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    d50 = np.array([0.9642, 1.0, 0.8249])
    cone = np.diag((brad @ d50) / (brad @ W))
    adapt = np.linalg.inv(brad) @ cone @ brad
    M50 = adapt @ M
    tags = [
        (b"desc", desc_tag(name)),
        (b"cprt", b"text\0\0\0\0" + b"Public domain (imgflow tests)\0"),
        (b"wtpt", xyz_tag(d50)),
        (b"rXYZ", xyz_tag(M50[:, 0])),
        (b"gXYZ", xyz_tag(M50[:, 1])),
        (b"bXYZ", xyz_tag(M50[:, 2])),
        (b"rTRC", para_srgb()),
        (b"gTRC", para_srgb()),
        (b"bTRC", para_srgb()),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    size = 128 + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + b"\0" * 12 + b"acspAPPL" + b"\0" * 4 * 6 + s15(0.9642) + s15(1.0) + s15(0.8249)
        + b"lcms" + b"\0" * 44
    )
    assert len(header) == 128, len(header)
    return header + body


def source_pixels():
    photo = Image.open(rocket).convert("RGB")
    photo = photo.resize((480, photo.height * 480 // photo.width), Image.LANCZOS)
    canvas = Image.new("RGB", (480, photo.height + 60), (255, 255, 255))
    canvas.paste(photo, (0, 0))
    # Saturated patches: where gamuts differ most.
    colours = [(230, 40, 40), (40, 200, 60), (30, 60, 220), (250, 220, 30), (0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 60, 200)]
    for i, c in enumerate(colours):
        canvas.paste(Image.new("RGB", (60, 60), c), (i * 60, photo.height))
    return canvas


srgb = ImageCms.createProfile("sRGB")
relative = ImageCms.Intent.RELATIVE_COLORIMETRIC
rgb = source_pixels()

p3 = matrix_profile(
    "Display P3 (imgflow test)",
    [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)],
    (0.3127, 0.3290),
)
adobe = open("/usr/share/color/icc/colord/AdobeRGB1998.icc", "rb").read()
cmyk = open("/usr/share/color/icc/ghostscript/default_cmyk.icc", "rb").read()

for name, icc in (("p3", p3), ("adobe", adobe)):
    open(f"{out}/{name}.icc", "wb").write(icc)
    rgb.save(f"{out}/{name}.png", icc_profile=icc)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    ref = ImageCms.profileToProfile(rgb, profile, srgb, renderingIntent=relative, outputMode="RGB")
    ref.save(f"{out}/{name}.ref.png")

# CMYK: separate the photo through the profile, store it as a CMYK JPEG
# (Pillow writes Adobe's inverted convention and marker), and convert what
# Pillow decodes from that file back to sRGB.
cmyk_profile = ImageCms.ImageCmsProfile(io.BytesIO(cmyk))
separated = ImageCms.profileToProfile(rgb, srgb, cmyk_profile, renderingIntent=relative, outputMode="CMYK")
open(f"{out}/cmyk.icc", "wb").write(cmyk)
separated.save(f"{out}/cmyk.jpg", quality=95, icc_profile=cmyk)
decoded = Image.open(f"{out}/cmyk.jpg")
assert decoded.mode == "CMYK"
ref = ImageCms.profileToProfile(decoded, cmyk_profile, srgb, renderingIntent=relative, outputMode="RGB")
ref.save(f"{out}/cmyk.ref.png")
print("ok")
