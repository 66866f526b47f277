"""Issue 16's measurements, in one run: decoding each new input format with
imgflow against libvips, and the cost of colour management on a 12 MP photo
(moxcms, which imgflow uses, against LittleCMS, which the lcms2 crate binds).

usage: bench/formats.sh   (builds, makes the fixtures, runs this; see there)

Decode: imgflow's `bench_recipe` example runs `crop,x=0,y=0,w=16,h=16/png`
(decode the whole image, keep 16x16, encode that) in-process, median of N;
libvips is `vips copy FILE out.v` (decode, write its raw format to tmpfs),
median of N, minus the median of the same command on a 16x16 PNG (process
start-up). Both single-threaded (VIPS_CONCURRENCY=1, taskset when present).
"""
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import colour  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageCms  # noqa: E402

root, bench_bin, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ADOBE = "/usr/share/color/icc/colord/AdobeRGB1998.icc"
env = dict(os.environ, VIPS_CONCURRENCY="1")
pin = ["taskset", "-c", "1"] if subprocess.run(["which", "taskset"], capture_output=True).returncode == 0 else []


def ours(path, recipe, n=runs):
    out = subprocess.run(pin + [bench_bin, path, recipe, str(n)], capture_output=True, text=True, env=env)
    line = json.loads(out.stdout.strip().splitlines()[-1])
    if "error" in line:
        raise SystemExit(f"{path} {recipe}: {line['error']}")
    return line["median_ms"]


def vips_copy(path, n=runs):
    times = []
    for _ in range(n + 1):
        t = time.perf_counter()
        subprocess.run(pin + ["vips", "copy", path, f"{work}/out.v"], check=True, env=env)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times[1:])


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True)


# ------------------------------------------------------------ fixtures --
photo = f"{root}/bench/fixtures/photo-12mp.jpg"
png = f"{work}/photo.png"
Image.open(photo).convert("RGB").save(png, compress_level=1)
files = {
    "TIFF 8-bit (deflate)": ("tif", lambda p: sh("convert", png, "-compress", "zip", p)),
    "TIFF 16-bit": ("16.tif", lambda p: sh("convert", png, "-depth", "16", "-compress", "zip", p)),
    "BMP": ("bmp", lambda p: sh("convert", png, p)),
    "HEIC (x265, q80)": ("heic", lambda p: sh("convert", png, "-quality", "80", p)),
    "AVIF (aom, q80)": ("avif", lambda p: sh("convert", png, "-quality", "80", "-define", "heic:speed=8", p)),
    "JPEG XL (cjxl -q 90 -e 3)": ("jxl", lambda p: sh("cjxl", png, p, "-q", "90", "-e", "3")),
}
rows = []
for name, (ext, make) in files.items():
    path = f"{work}/photo.{ext}"
    if not os.path.exists(path):
        make(path)
    rows.append((name, path))
# SVG: 4000x3000, 2000 shapes.
svg = f"{work}/drawing.svg"
rng = np.random.default_rng(7)
shapes = "".join(
    f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{r:.0f}" fill="#{c:06x}" fill-opacity="0.6"/>'
    for x, y, r, c in zip(rng.uniform(0, 4000, 2000), rng.uniform(0, 3000, 2000), rng.uniform(10, 200, 2000), rng.integers(0, 1 << 24, 2000))
)
open(svg, "w").write(f'<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="3000"><rect width="4000" height="3000" fill="#fff"/>{shapes}</svg>')
rows.append(("SVG (2000 circles)", svg))
tiny = f"{work}/tiny.png"
Image.new("RGB", (16, 16)).save(tiny)
startup = vips_copy(tiny)

print(f"# Decoding new input formats, 4000x3000 (12 MP), median of {runs}\n")
print("| format | file bytes | imgflow ms | libvips ms | imgflow / libvips |")
print("|---|---:|---:|---:|---:|")
for name, path in rows:
    a = ours(path, "crop,x=0,y=0,w=16,h=16/png")
    b = vips_copy(path) - startup
    print(f"| {name} | {os.path.getsize(path):,} | {a:.0f} | {b:.0f} | {a / b:.2f} |")
print(f"\n(libvips start-up, subtracted: {startup:.0f} ms.)\n")

# ---------------------------------------------------------- colour cost --
adobe = open(ADOBE, "rb").read()
rgb = Image.open(png)
tagged_png, tagged_jpg, plain_jpg = f"{work}/adobe.png", f"{work}/adobe.jpg", f"{work}/plain.jpg"
rgb.save(tagged_png, icc_profile=adobe, compress_level=1)
rgb.save(tagged_jpg, quality=90, icc_profile=adobe)
rgb.save(plain_jpg, quality=90)
decode_plain = ours(png, "crop,x=0,y=0,w=16,h=16/png")
decode_tagged = ours(tagged_png, "crop,x=0,y=0,w=16,h=16/png")
moxcms_ms = decode_tagged - decode_plain

profile = ImageCms.ImageCmsProfile(ADOBE)
srgb = ImageCms.createProfile("sRGB")
transform = ImageCms.buildTransform(profile, srgb, "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
times = []
for _ in range(runs + 1):
    t = time.perf_counter()
    lcms_out = ImageCms.applyTransform(rgb, transform)
    times.append((time.perf_counter() - t) * 1000)
lcms_ms = statistics.median(times[1:])

print("# Colour management on a 12 MP Adobe RGB (1998) photo\n")
print("| | ms |")
print("|---|---:|")
print(f"| imgflow decode, untagged PNG (crop 16x16/png) | {decode_plain:.0f} |")
print(f"| imgflow decode, same PNG tagged Adobe RGB | {decode_tagged:.0f} |")
print(f"| **moxcms conversion (the difference)** | **{moxcms_ms:.0f}** |")
print(f"| LittleCMS 2 (Pillow ImageCms.applyTransform, 8-bit, same run) | {lcms_ms:.0f} |")
print()
print("| job (12 MP JPEG q90) | untagged ms | Adobe RGB ms | colour share |")
print("|---|---:|---:|---:|")
for recipe in ["resize,w=1200/jpeg", "resize,w=3000/webp", "jpeg"]:
    a, b = ours(plain_jpg, recipe), ours(tagged_jpg, recipe)
    print(f"| `{recipe}` | {a:.0f} | {b:.0f} | {(b - a) / b * 100:.1f} % |")

# ------------------------------------------------------------- accuracy --
ours_png = f"{work}/ours.png"
subprocess.run([f"{root}/target/release/imgflow", "process", tagged_png, "-o", ours_png, "--recipe", "png"], check=True, capture_output=True)
src = np.asarray(rgb, dtype=np.float64)[::4, ::4] / 255
exact = colour.RGB_to_RGB(
    src, colour.RGB_COLOURSPACES["Adobe RGB (1998)"], colour.RGB_COLOURSPACES["sRGB"],
    apply_cctf_decoding=True, apply_cctf_encoding=True,
)
exact = np.round(np.clip(exact, 0, 1) * 255) / 255


def de(img):
    a = np.asarray(img, dtype=np.float64)[::4, ::4] / 255
    d = colour.delta_E(*(colour.XYZ_to_Lab(colour.sRGB_to_XYZ(x)) for x in (a, exact)), method="CIE 2000")
    return d.mean(), np.percentile(d, 99.9), d.max()


print("\n# Accuracy against an exact (float64, colour-science) conversion, ΔE2000 on 3 MP of it\n")
print("| CMS | mean | 99.9th percentile | max |")
print("|---|---:|---:|---:|")
for name, img in [("moxcms (imgflow)", Image.open(ours_png).convert("RGB")), ("LittleCMS 2 (Pillow)", lcms_out)]:
    m, p, x = de(img)
    print(f"| {name} | {m:.3f} | {p:.3f} | {x:.3f} |")
