"""AVIF encode time and bytes: imgflow (ravif/rav1e) against libvips
heifsave (libheif + libaom), at matched PSNR, in one run. Usage:

    python bench/avif.py IMGFLOW FIXTURE OUT.md

Both run pinned to one core (`taskset -c 1`), one thread each; every
setting is run twice and the faster time kept. PSNR is over RGB against
the source as Pillow decodes it; outputs are decoded by Pillow's libavif.
"""

import json, math, os, subprocess, sys, tempfile, time
from PIL import Image, ImageChops, ImageStat

IMGFLOW, FIXTURE, OUT = sys.argv[1:4]
CPU = os.environ.get("BENCH_CPU", "1")
RUNS = 2


def psnr(path, ref):
    im = Image.open(path).convert("RGB")
    assert im.size == ref.size, (im.size, ref.size)
    mse = sum(v * v for v in ImageStat.Stat(ImageChops.difference(im, ref)).rms) / 3
    return 99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse)


def timed(cmd, env=None):
    best = None
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(["taskset", "-c", CPU] + cmd, check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return best * 1000


def main():
    ref = Image.open(FIXTURE).convert("RGB")
    tmp = tempfile.mkdtemp()
    rows = []
    env = dict(os.environ, VIPS_CONCURRENCY="1")
    for q, speed in [(40, 6), (50, 6), (60, 6), (70, 6), (80, 6), (60, 4), (60, 8), (60, 10)]:
        out = f"{tmp}/imgflow-q{q}-s{speed}.avif"
        ms = timed([IMGFLOW, "process", FIXTURE, "-o", out, "--recipe", f"avif,q={q},speed={speed}"])
        rows.append(("imgflow (ravif)", f"q={q},speed={speed}", ms, os.path.getsize(out), psnr(out, ref)))
    for q in [30, 40, 50, 60, 70]:
        out = f"{tmp}/vips-Q{q}.avif"
        ms = timed(["vips", "heifsave", FIXTURE, out, "--compression", "av1", "--encoder", "aom",
                    "--Q", str(q), "--bitdepth", "8", "--effort", "4", "--strip"], env)
        rows.append(("libvips heifsave (aom)", f"Q={q},effort=4", ms, os.path.getsize(out), psnr(out, ref)))
    out = f"{tmp}/imgflow.jpg"
    ms = timed([IMGFLOW, "process", FIXTURE, "-o", out, "--recipe", "jpeg,q=82"])
    rows.append(("imgflow JPEG (reference)", "q=82", ms, os.path.getsize(out), psnr(out, ref)))

    vips = sorted((r for r in rows if r[0].startswith("libvips")), key=lambda r: r[4])

    def at(db, column):
        # Linear interpolation on vips's PSNR curve.
        for a, b in zip(vips, vips[1:]):
            if a[4] <= db <= b[4]:
                t = (db - a[4]) / (b[4] - a[4])
                return a[column] + t * (b[column] - a[column])
        return None

    load = os.getloadavg()
    lines = [
        "# AVIF encode: imgflow (ravif 0.13 / rav1e) vs libvips heifsave (libheif 1.15 + libaom 3.6)",
        "",
        f"Command: `bench/avif.sh` (this file is its output). Fixture: `{os.path.basename(FIXTURE)}` "
        f"({ref.size[0]}x{ref.size[1]}, from `bench/make-fixtures.sh`). Both pinned to CPU {CPU} with "
        f"`taskset`, one thread each (`VIPS_CONCURRENCY=1`), best of {RUNS} runs; times are whole "
        "processes (imgflow's include its JPEG decode, ~10 ms; vips's its start-up and decode too). "
        f"PSNR: RGB against the source, decoded by Pillow's libavif. Load average during the run: "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}.",
        "",
        "| encoder | setting | ms | bytes | PSNR dB |",
        "|---|---|---:|---:|---:|",
    ]
    for name, setting, ms, size, db in rows:
        lines.append(f"| {name} | {setting} | {ms:.0f} | {size} | {db:.2f} |")
    lines += ["", "## At matched PSNR (libvips interpolated to imgflow's PSNR)", "",
              "| imgflow setting | PSNR dB | imgflow ms | vips ms | time ratio (imgflow/vips) | imgflow bytes | vips bytes | bytes ratio |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, setting, ms, size, db in rows:
        if not name.startswith("imgflow (ravif)"):
            continue
        vms, vbytes = at(db, 2), at(db, 3)
        if vms is None:
            lines.append(f"| {setting} | {db:.2f} | {ms:.0f} | outside vips's range | | {size} | | |")
            continue
        lines.append(f"| {setting} | {db:.2f} | {ms:.0f} | {vms:.0f} | {ms / vms:.2f} | {size} | {vbytes:.0f} | {size / vbytes:.2f} |")
    text = "\n".join(lines) + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    print(text)
    print(json.dumps([list(r) for r in rows]))


main()
