#!/usr/bin/env python3
"""imgflow against libvips and ImageMagick, in one run, one thread each.

For every case of bench/cases.txt on each of its fixtures:
  - imgflow: target/release/examples/bench_recipe in its own process (its
    median over N runs after a warm-up; its own VmHWM);
  - libvips: the fairest equivalent through pyvips, in-process, in a fresh
    Python subprocess per case (VIPS_CONCURRENCY=1, operation cache off) so
    its peak RSS is its own;
  - ImageMagick: /usr/bin/convert -limit thread 1, one process per run (its
    time includes process start-up and file I/O; peak RSS from wait4).
Prints a Markdown table: medians, ratios, peak RSS, output bytes, PSNR of our
resizes against libvips's Lanczos3 and whether issue 3's targets are met.
Results (JSON, Markdown, every output image) go to bench/results/.

    bench/compare.py [--quick] [--cases thumb800,blur2] [--fixtures 12mp]

It runs itself under bench/.venv, creating it (pyvips from PyPI, pinned in
bench/requirements.txt) when missing. See bench/README.md.
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
VENV = os.path.join(BENCH, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = os.path.join(BENCH, "requirements.txt")
CASES_FILE = os.path.join(BENCH, "cases.txt")
FIXTURES = os.path.join(BENCH, "fixtures")
RESULTS = os.path.join(BENCH, "results")
CONVERT = "/usr/bin/convert"  # the real ImageMagick 6 (not a stand-in earlier on PATH)

# One thread for everyone.
SINGLE_THREAD_ENV = {
    "VIPS_CONCURRENCY": "1",
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MAGICK_THREAD_LIMIT": "1",
}

SEPIA = [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]]
WATERMARK = {"text": "imgflow", "size": 48, "opacity": 0.5, "margin": 20}


# --------------------------------------------------------------------------
# The venv


def ensure_venv():
    """Re-exec under bench/.venv, creating it and installing pyvips if needed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    with open(REQUIREMENTS) as f:
        wanted = f.read()
    stamp = os.path.join(VENV, ".requirements.installed")
    try:
        with open(stamp) as f:
            installed = f.read()
    except OSError:
        installed = None
    if installed != wanted or not os.path.exists(VENV_PYTHON):
        log(f"compare: setting up {VENV} (pyvips from PyPI)")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run(
            [
                VENV_PYTHON,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                REQUIREMENTS,
            ],
            check=True,
        )
        check = subprocess.run([VENV_PYTHON, "-c", "import pyvips; pyvips.version(0)"])
        if check.returncode != 0:
            # cffi could not find the system libvips: use the self-contained wheel.
            log("compare: system libvips not usable from pyvips, installing pyvips-binary")
            subprocess.run(
                [VENV_PYTHON, "-m", "pip", "install", "--quiet", "pyvips-binary"], check=True
            )
        with open(stamp, "w") as f:
            f.write(wanted)
    os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])


def log(message):
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Cases


def parse_cases():
    cases = []
    with open(CASES_FILE) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            columns = line.split()
            if len(columns) < 3:
                raise SystemExit(f"compare: bad line in {CASES_FILE}: {line!r}")
            targets = []
            if len(columns) > 3 and columns[3] != "-":
                for t in columns[3].split(","):
                    targets.append(parse_target(t))
            cases.append(
                {
                    "id": columns[0],
                    "fixtures": columns[1].split(","),
                    "recipe": columns[2],
                    "targets": targets,
                }
            )
    return cases


def parse_target(text):
    spec, _, fixture = text.partition("@")
    for op, kind in (("<=", "max"), (">=", "min"), ("~", "within")):
        if op in spec:
            metric, value = spec.split(op)
            return {
                "text": text,
                "metric": metric,
                "kind": kind,
                "value": float(value),
                "fixture": fixture,
            }
    raise SystemExit(f"compare: bad target {text!r} in {CASES_FILE}")


# --------------------------------------------------------------------------
# libvips equivalents: bytes in -> list of encoded outputs (the first one is
# the one compared). Parameters mirror the recipes in cases.txt.


def vips_equivalents(pyvips):
    Image = pyvips.Image

    def load(data, access="sequential"):
        return Image.new_from_buffer(data, "", access=access)

    def jpeg(image, q=80):
        return image.jpegsave_buffer(Q=q)

    def watermark(image):
        w = WATERMARK
        # Font size in points at 72 dpi = pixels.
        mask = Image.text(w["text"], font=f"DejaVu Sans {w['size']}", dpi=72)
        x = max(0, image.width - mask.width - w["margin"])
        y = max(0, image.height - mask.height - w["margin"])
        overlay = (
            mask.new_from_image([255, 255, 255])
            .bandjoin((mask * w["opacity"]).cast("uchar"))
            .copy(interpretation="srgb")
        )
        # Composite only the text's box, then put it back: the cheapest exact way.
        box = image.crop(x, y, mask.width, mask.height)
        marked = box.composite2(overlay, "over").extract_band(0, n=image.bands).cast("uchar")
        return image.insert(marked, x, y)

    return {
        "thumb800": lambda d: [jpeg(Image.thumbnail_buffer(d, 800))],
        "thumb800_png": lambda d: [Image.thumbnail_buffer(d, 800).pngsave_buffer()],
        "thumb800_webp": lambda d: [Image.thumbnail_buffer(d, 800).webpsave_buffer(Q=80)],
        "cover256": lambda d: [jpeg(Image.thumbnail_buffer(d, 256, height=256, crop="centre"))],
        "preset_default": lambda d: [
            jpeg(Image.thumbnail_buffer(d, 256, height=256, crop="centre"), 82),
            jpeg(Image.thumbnail_buffer(d, 1280, height=1280, size="down"), 82),
        ],
        "reencode": lambda d: [jpeg(load(d))],
        "grayscale": lambda d: [jpeg(load(d).colourspace("b-w"))],
        "sepia": lambda d: [jpeg(load(d).recomb(SEPIA).cast("uchar"))],
        "blur2": lambda d: [jpeg(load(d).gaussblur(2))],
        "sharpen1": lambda d: [jpeg(load(d).sharpen(sigma=1))],
        "watermark": lambda d: [jpeg(watermark(load(d)))],
        "crop": lambda d: [jpeg(load(d).crop(100, 100, 800, 600))],
        "rotate90": lambda d: [jpeg(load(d, "random").rot90())],
        # libvips has no lossless transform: the same rotation, re-encoded.
        "rotate90_lossless": lambda d: [jpeg(load(d, "random").rot90())],
        "flip_h": lambda d: [jpeg(load(d).fliphor())],
        "combo": lambda d: [
            jpeg(watermark(Image.thumbnail_buffer(d, 1600, size="down").sharpen(sigma=1)))
        ],
    }


VIPS_DESCRIPTIONS = {
    "thumb800": "thumbnail_buffer(800) → jpegsave_buffer(Q=80)",
    "thumb800_png": "thumbnail_buffer(800) → pngsave_buffer()",
    "thumb800_webp": "thumbnail_buffer(800) → webpsave_buffer(Q=80)",
    "cover256": "thumbnail_buffer(256, height=256, crop=centre) → Q=80",
    "preset_default": "thumbnail_buffer ×2 (256 crop=centre; 1280 size=down) → Q=82",
    "reencode": "new_from_buffer → jpegsave_buffer(Q=80)",
    "grayscale": "colourspace('b-w') → Q=80",
    "sepia": "recomb(sepia matrix) → cast(uchar) → Q=80",
    "blur2": "gaussblur(2) → Q=80",
    "sharpen1": "sharpen(sigma=1) → Q=80",
    "watermark": "Image.text('DejaVu Sans 48') → composite2 over the text's box → insert → Q=80",
    "crop": "crop(100,100,800,600) → Q=80",
    "rotate90": "rot90() (random access) → Q=80",
    "rotate90_lossless": "rot90() (random access) → Q=80 (libvips has no lossless rotation)",
    "flip_h": "fliphor() → Q=80",
    "combo": "thumbnail_buffer(1600, size=down) → sharpen(sigma=1) → watermark → Q=80",
}


# ImageMagick: (arguments before the input, arguments after it, output
# extensions); outputs after the first are written with -write.
WATERMARK_IM = [
    "-gravity",
    "southeast",
    "-font",
    "DejaVu-Sans",
    "-pointsize",
    "48",
    "-fill",
    "rgba(255,255,255,0.5)",
    "-annotate",
    "+20+20",
    "imgflow",
    "-gravity",
    "northwest",
]
SEPIA_IM = " ".join(str(v) for row in SEPIA for v in row)


def im_equivalent(case_id, fixture="12mp"):
    q80 = ["-quality", "80"]

    def hint(size):
        # libjpeg's shrink-on-load, ImageMagick's fast path for big JPEGs. Only
        # on the 12 MP fixture: IM 6.9.11 enlarges an image smaller than the hint.
        return ["-define", f"jpeg:size={size}"] if fixture == "12mp" else []

    table = {
        "thumb800": (hint("1600x1200"), ["-thumbnail", "800x"] + q80, "jpg"),
        "thumb800_png": (hint("1600x1200"), ["-thumbnail", "800x"], "png"),
        "thumb800_webp": (hint("1600x1200"), ["-thumbnail", "800x"] + q80, "webp"),
        "cover256": (
            hint("512x512"),
            ["-thumbnail", "256x256^", "-gravity", "center", "-extent", "256x256"] + q80,
            "jpg",
        ),
        # OUT is the first output (thumb); the second (web) is written from a clone.
        "preset_default": (
            hint("2560x2560"),
            [
                "-strip",
                "(",
                "+clone",
                "-thumbnail",
                "1280x1280>",
                "-quality",
                "82",
                "-write",
                "{out2}",
                "+delete",
                ")",
                "-thumbnail",
                "256x256^",
                "-gravity",
                "center",
                "-extent",
                "256x256",
                "-quality",
                "82",
            ],
            "jpg",
        ),
        "reencode": ([], ["-strip"] + q80, "jpg"),
        "grayscale": ([], ["-strip", "-colorspace", "Gray"] + q80, "jpg"),
        "sepia": ([], ["-strip", "-color-matrix", SEPIA_IM] + q80, "jpg"),
        "blur2": ([], ["-strip", "-blur", "0x2"] + q80, "jpg"),
        "sharpen1": ([], ["-strip", "-unsharp", "0x1+1+0"] + q80, "jpg"),
        "watermark": ([], ["-strip"] + WATERMARK_IM + q80, "jpg"),
        "crop": ([], ["-strip", "-crop", "800x600+100+100", "+repage"] + q80, "jpg"),
        "rotate90": ([], ["-strip", "-rotate", "90"] + q80, "jpg"),
        "rotate90_lossless": ([], ["-strip", "-rotate", "90"] + q80, "jpg"),
        "flip_h": ([], ["-strip", "-flop"] + q80, "jpg"),
        "combo": (
            hint("3200x2400"),
            ["-thumbnail", "1600x>", "-unsharp", "0x1+1+0"] + WATERMARK_IM + q80,
            "jpg",
        ),
    }
    return table.get(case_id)


# --------------------------------------------------------------------------
# Workers


def proc_status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def vips_worker(case_id, fixture_path, iterations, out_path):
    """Runs in its own process: print one JSON line about libvips on one case."""
    import pyvips

    pyvips.cache_set_max(0)  # every run does the work, none is served from the cache
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    with open(fixture_path, "rb") as f:
        data = f.read()
    fn = vips_equivalents(pyvips)[case_id]
    # Idle = Python + pyvips imported + the input read: what "net" subtracts. libvips's
    # own start-up (its threads and their malloc arenas) stays in net, as a server pays it.
    idle = proc_status_kib("VmRSS")
    outputs = fn(data)  # warm-up
    with open(out_path, "wb") as f:
        f.write(outputs[0])
    first = pyvips.Image.new_from_buffer(outputs[0], "")
    summary = {
        "bytes": sum(len(o) for o in outputs),
        "first_bytes": len(outputs[0]),
        "width": first.width,
        "height": first.height,
        "bands": first.bands,
    }
    del outputs, first
    first_peak = proc_status_kib("VmHWM")
    times = []
    cpu0 = os.times()
    for _ in range(iterations):
        start = time.perf_counter()
        outputs = fn(data)
        times.append((time.perf_counter() - start) * 1000)
        del outputs
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000 / iterations
    print(
        json.dumps(
            dict(
                summary,
                median_ms=statistics.median(times),
                min_ms=min(times),
                cpu_ms=cpu,
                idle_rss_kib=idle,
                first_peak_rss_kib=first_peak,
                peak_rss_kib=proc_status_kib("VmHWM"),
            )
        )
    )


# Extra bench_recipe flags: --threads N (--all-threads), --analysed.
OURS_FLAGS = []


def run_ours(binary, fixture_path, recipe, iterations, out_path):
    env = dict(os.environ, **SINGLE_THREAD_ENV)
    proc = subprocess.run(
        [binary, fixture_path, recipe, str(iterations), "--out", out_path, *OURS_FLAGS],
        capture_output=True,
        text=True,
        env=env,
    )
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    if proc.returncode == 2:
        result["na"] = True  # the recipe does not parse: an operation not written yet
    elif proc.returncode != 0:
        result.setdefault("error", f"exit status {proc.returncode}")
    return result


def run_floor(binary, fixture_path, iterations):
    """examples/jpeg_floor beside bench_recipe: scaled decode + encode, no resize."""
    floor = os.path.join(os.path.dirname(binary), "jpeg_floor")
    if not os.path.exists(floor):
        return {"error": f"{floor} is missing: cargo build --release --example jpeg_floor"}
    env = dict(os.environ, **SINGLE_THREAD_ENV)
    proc = subprocess.run(
        [floor, fixture_path, "800", str(iterations)], capture_output=True, text=True, env=env
    )
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (proc.stderr or proc.stdout).strip()[-300:]}


def before_after(rows, baseline):
    """The same run's times: an older build (--baseline), this one, libvips, the floor."""
    lines = [
        f"Before/after in the same run (before: `{baseline}`)" if baseline else "Floor",
        "",
        "| case | fixture | before ms | after ms | libvips ms | before/libvips | after/libvips "
        "| floor ms | after/floor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        before = (row.get("before") or {}).get("median_ms")
        after = row["ours"].get("median_ms")
        vips = row["vips"].get("median_ms")
        floor = (row.get("floor") or {}).get("median_ms")
        lines.append(
            "| "
            + " | ".join(
                [
                    row["case"],
                    row["fixture"],
                    fmt(before, ".1f"),
                    fmt(after, ".1f"),
                    fmt(vips, ".1f"),
                    fmt(ratio(before, vips), ".2f"),
                    fmt(ratio(after, vips), ".2f"),
                    fmt(floor, ".1f"),
                    fmt(ratio(after, floor), ".2f"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def run_vips(case_id, fixture_path, iterations, out_path):
    env = dict(os.environ, **SINGLE_THREAD_ENV)
    proc = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--vips-worker",
            case_id,
            fixture_path,
            str(iterations),
            out_path,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_im(case_id, fixture, fixture_path, iterations, out_base):
    spec = im_equivalent(case_id, fixture)
    if spec is None or not os.path.exists(CONVERT):
        return None
    pre, post, ext = spec
    out = f"{out_base}.{ext}"
    second = f"{out_base}-2.{ext}"
    post = [a.replace("{out2}", second) for a in post]
    argv = [CONVERT, "-limit", "thread", "1"] + pre + [fixture_path] + post + [out]
    # The runs are started from a small helper process: a child's ru_maxrss
    # starts at its parent's RSS (fork), and this process holds pyvips images.
    proc = subprocess.run(
        [
            sys.executable,
            os.path.abspath(__file__),
            "--im-worker",
            json.dumps({"argv": argv, "iterations": iterations}),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, **SINGLE_THREAD_ENV),
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result.get("error"):
        return result
    outputs = [out] + ([second] if os.path.exists(second) else [])
    result.update(
        bytes=sum(os.path.getsize(o) for o in outputs),
        first_bytes=os.path.getsize(out),
        out=out,
        argv=" ".join(argv[1:]),
    )
    return result


def im_worker(spec_json):
    """Runs in its own small process: time ImageMagick runs, print one JSON line."""
    spec = json.loads(spec_json)
    times, peaks, cpus = [], [], []
    for i in range(spec["iterations"] + 1):  # the first run warms the page cache, not counted
        start = time.perf_counter()
        proc = subprocess.Popen(spec["argv"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if proc.returncode != 0:
            print(json.dumps({"error": err.strip()[-300:] or f"exit status {proc.returncode}"}))
            return
        if i > 0:
            times.append(elapsed)
            peaks.append(usage.ru_maxrss)
            cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
    print(
        json.dumps(
            {
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "cpu_ms": statistics.median(cpus),
                "peak_rss_kib": max(peaks),
                # ru_maxrss is at least this helper's RSS (the fork): a floor, far below IM's
                "rss_floor_kib": proc_status_kib("VmHWM"),
            }
        )
    )


# --------------------------------------------------------------------------
# PSNR against libvips Lanczos3 (full decode, then resize with gap=0: no
# shrink-on-load, no box pre-shrink; the reference, not a timed case)


def psnr(pyvips, a, b):
    if a.bands != b.bands:
        a = a.colourspace("srgb") if a.bands < 3 else a
        b = b.colourspace("srgb") if b.bands < 3 else b
        a, b = a.extract_band(0, n=3), b.extract_band(0, n=3)
    w, h = min(a.width, b.width), min(a.height, b.height)
    diff = a.crop(0, 0, w, h).cast("float") - b.crop(0, 0, w, h).cast("float")
    mse = (diff * diff).avg()
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def lanczos_reference(pyvips, fixture_path, width, height, cache):
    key = (fixture_path, width, height)
    if key not in cache:
        src = pyvips.Image.new_from_file(fixture_path, access="random")
        ref = src.resize(width / src.width, vscale=height / src.height, kernel="lanczos3", gap=0.0)
        cache[key] = ref.copy_memory()
    return cache[key]


def add_psnr(pyvips, row, fixture_path, cache):
    """PSNR of our first output and of libvips's, both against the Lanczos3 reference."""
    ours, vips = row["ours"], row["vips"]
    if not (ours.get("width") and ours.get("out")) or not os.path.exists(ours["out"]):
        return
    try:
        our_image = pyvips.Image.new_from_file(ours["out"])
        ref = lanczos_reference(pyvips, fixture_path, our_image.width, our_image.height, cache)
        row["psnr_ours"] = psnr(pyvips, our_image, ref)
        if vips.get("out") and os.path.exists(vips["out"]):
            row["psnr_vips"] = psnr(pyvips, pyvips.Image.new_from_file(vips["out"]), ref)
    except pyvips.Error as e:
        row["psnr_error"] = str(e).strip()[:200]


# --------------------------------------------------------------------------
# Report


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, spec=".0f", none="–"):
    if value is None:
        return none
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return format(value, spec)


def mib(kib):
    return None if kib is None else kib / 1024


def check_targets(case, row):
    results = []
    for t in case["targets"]:
        if t["fixture"] and t["fixture"] != row["fixture"]:
            continue
        value = {
            "time": row.get("time_ratio_vips"),
            "rss": row.get("net_rss_ratio_vips"),
            "bytes": row.get("bytes_ratio_vips"),
            "psnr": row.get("psnr_ours"),
        }.get(t["metric"])
        if value is None:
            ok = None
        elif t["kind"] == "max":
            ok = value <= t["value"]
        elif t["kind"] == "min":
            ok = value >= t["value"]
        else:
            ok = abs(value - 1) * 100 <= t["value"]
        label = {
            "time": f"time≤{t['value']:g}×",
            "rss": f"RSS≤{t['value']:g}×",
            "bytes": f"bytes±{t['value']:g}%",
            "psnr": f"PSNR≥{t['value']:g}",
        }[t["metric"]]
        results.append((label, ok))
    return results


def table_cells(row, case):
    """The 13 cells of one row of the main table."""
    ours, vips, im = row["ours"], row["vips"], row.get("im") or {}

    def ms(result, spec):
        return fmt(result.get("median_ms"), spec, "err" if result else "–")

    def rss(result):
        return fmt(mib(result.get("peak_rss_kib")))

    def net(side):
        steady = fmt(mib(row.get(f"net_rss_{side}")))
        return f"{steady} ({fmt(mib(row.get(f'first_net_rss_{side}')))})"

    head = [row["case"], row["fixture"]]
    if ours.get("na") or ours.get("error"):
        status = "n/a" if ours.get("na") else "error"
        note = "recipe does not parse yet" if ours.get("na") else ours["error"][:80]
        return head + [
            status,
            ms(vips, ".1f"),
            ms(im, ".0f"),
            "",
            "",
            f"– / {rss(vips)} / {rss(im)}",
            "",
            "",
            "",
            "",
            f"{status}: {note}",
        ]
    targets = ", ".join(
        f"{label} {'✅' if ok else ('❌' if ok is False else '?')}"
        for label, ok in check_targets(case, row)
    )
    psnr_text = ""
    if "psnr_ours" in row:
        psnr_text = f"{fmt(row['psnr_ours'], '.1f')} ({fmt(row.get('psnr_vips'), '.1f')})"
    return head + [
        fmt(ours.get("median_ms"), ".1f"),
        ms(vips, ".1f"),
        ms(im, ".0f"),
        fmt(row.get("time_ratio_vips"), ".2f"),
        fmt(row.get("time_ratio_im"), ".2f"),
        f"{rss(ours)} / {rss(vips)} / {rss(im)}",
        f"{net('ours')} / {net('vips')}",
        fmt(ours.get("bytes", 0) / 1024),
        fmt(row.get("bytes_ratio_vips"), ".2f"),
        psnr_text,
        targets,
    ]


def markdown(rows, cases_by_id, header):
    out = [header, ""]
    out.append(
        "| case | fixture | imgflow ms | libvips ms | IM ms | ours/libvips | ours/IM "
        "| peak RSS MiB ours / libvips / IM | net RSS MiB ours / libvips (1st run) "
        "| out KiB ours | bytes vs libvips | PSNR dB ours (libvips) | targets |"
    )
    out.append("|" + "---|" * 13)
    for row in rows:
        out.append("| " + " | ".join(table_cells(row, cases_by_id[row["case"]])) + " |")
    out.append("")
    out.append(
        "| case | recipe (imgflow) | libvips (pyvips, in-process) "
        "| ImageMagick (`-define jpeg:size` on 12 MP only) |"
    )
    out.append("|---|---|---|---|")
    for case_id, case in cases_by_id.items():
        if not any(r["case"] == case_id for r in rows):
            continue
        im = im_equivalent(case_id)
        im_text = (
            " ".join(im[0] + ["IN"] + im[1] + [f"OUT.{im[2]}"]).replace("{out2}", f"OUT2.{im[2]}")
            if im
            else "–"
        )
        out.append(
            f"| {case_id} | `{case['recipe']}` | {VIPS_DESCRIPTIONS.get(case_id, '–')} "
            f"| `{im_text}` |"
        )
    return "\n".join(out)


def environment(pyvips):
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rev = cmd(["git", "rev-parse", "--short", "HEAD"])
    dirty = " (uncommitted changes)" if cmd(["git", "status", "--porcelain", "--", "src"]) else ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": rev + dirty,
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "rustc": cmd(["rustc", "--version"]),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} "
        f"(pyvips {pyvips.__version__}, {'API' if pyvips.API_mode else 'ABI'} mode)",
        "imagemagick": (cmd([CONVERT, "-version"]).splitlines() or ["?"])[0].replace(
            "Version: ", ""
        ),
        "python": platform.python_version(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case ids (default: all)")
    parser.add_argument("--fixtures", help="comma-separated fixtures: 12mp,1mp (default: both)")
    parser.add_argument(
        "--iterations",
        type=int,
        help="timed runs per case for imgflow and libvips (default 7 on 12 MP, "
        "15 on 1 MP; ImageMagick 5 and 9)",
    )
    parser.add_argument("--quick", action="store_true", help="3 timed runs each: a smoke test")
    parser.add_argument("--no-imagemagick", action="store_true")
    parser.add_argument(
        "--cpu",
        type=int,
        default=(os.cpu_count() or 1) - 1,
        help="pin every measured process to this CPU (default: the last one; "
        "-1: no pinning). libvips keeps a write-behind thread even at "
        "VIPS_CONCURRENCY=1; pinning makes 'one thread' one core for all",
    )
    parser.add_argument(
        "--binary",
        help="bench_recipe binary (default: "
        "$CARGO_TARGET_DIR or target/ + release/examples/bench_recipe)",
    )
    parser.add_argument(
        "--baseline",
        help="a second bench_recipe binary (an older build): also timed on every case, "
        "in the same run, in an extra before/after table",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time examples/jpeg_floor on the thumb800 cases: libjpeg-turbo's scaled "
        "decode plus encode of the same file, the floor under a JPEG thumbnail",
    )
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="single-job latency with every core: no pinning, libvips at its default "
        "concurrency (VIPS_CONCURRENCY unset), imgflow as an idle worker runs it "
        "(a thread per core, the manifest's analysis included)",
    )
    parser.add_argument(
        "--analysed",
        action="store_true",
        help="imgflow as the worker runs a job: the manifest's analysis of the source "
        "(size, dominant colour, BlurHash) included; without it, as `imgflow process` runs it",
    )
    args = parser.parse_args()
    if args.analysed:
        OURS_FLAGS.append("--analysed")
    if args.all_threads:
        SINGLE_THREAD_ENV.clear()
        os.environ.pop("VIPS_CONCURRENCY", None)
        args.cpu = -1
        OURS_FLAGS.extend(["--threads", str(os.cpu_count()), "--analysed"])

    import pyvips

    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = args.binary or os.path.join(target_dir, "release", "examples", "bench_recipe")
    if not os.path.exists(binary):
        raise SystemExit(
            f"compare: {binary} is missing; run "
            "cargo build --release --example bench_recipe (or bench/run.sh)"
        )
    pyvips.cache_set_max(0)

    cases = parse_cases()
    cases_by_id = {c["id"]: c for c in cases}
    wanted = set(args.cases.split(",")) if args.cases else None
    if wanted and wanted - set(cases_by_id):
        raise SystemExit(f"compare: unknown cases {sorted(wanted - set(cases_by_id))}")
    fixtures_wanted = args.fixtures.split(",") if args.fixtures else ["12mp", "1mp"]
    equivalents = vips_equivalents(pyvips)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(RESULTS, stamp)
    os.makedirs(outdir, exist_ok=True)

    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})  # inherited by every process started below
    env = environment(pyvips)
    env["pinned"] = (
        f"every measured process pinned to one core (CPU {args.cpu}), VIPS_CONCURRENCY=1, "
        "`convert -limit thread 1`"
        if args.cpu >= 0
        else "not pinned"
    )
    if args.all_threads:
        env["pinned"] = (
            "not pinned, every process at its default thread count (libvips: "
            "VIPS_CONCURRENCY unset; imgflow: `--threads` = the CPUs, as an idle worker)"
        )
    if "--analysed" in OURS_FLAGS:
        env["pinned"] += "; imgflow as the worker runs a job (with the manifest's analysis)"
    else:
        env["pinned"] += "; imgflow as `imgflow process` runs it (no manifest analysis)"
    if os.getloadavg()[0] > 1.0:
        log(f"compare: warning: load average {env['load']}; other work skews the timings")

    rows, ref_cache = [], {}
    for fixture in fixtures_wanted:
        fixture_path = os.path.join(FIXTURES, f"photo-{fixture}.jpg")
        if not os.path.exists(fixture_path):
            raise SystemExit(f"compare: {fixture_path} is missing; run bench/make-fixtures.sh")
        big = fixture == "12mp"
        n = args.iterations or (3 if args.quick else (7 if big else 15))
        n_im = args.iterations or (3 if args.quick else (5 if big else 9))
        for case in cases:
            if (wanted and case["id"] not in wanted) or fixture not in case["fixtures"]:
                continue
            base = os.path.join(outdir, f"{case['id']}-{fixture}")
            ext = case_extension(case["recipe"])
            log(f"compare: {case['id']} on {fixture}: {case['recipe']}")
            row = {"case": case["id"], "fixture": fixture, "recipe": case["recipe"]}
            row["ours"] = run_ours(binary, fixture_path, case["recipe"], n, f"{base}-imgflow.{ext}")
            row["ours"]["out"] = f"{base}-imgflow.{ext}"
            if args.baseline:
                row["before"] = run_ours(
                    args.baseline, fixture_path, case["recipe"], n, f"{base}-before.{ext}"
                )
            if args.floor and case["id"] == "thumb800":
                row["floor"] = run_floor(binary, fixture_path, n)
            if case["id"] in equivalents:
                row["vips"] = run_vips(case["id"], fixture_path, n, f"{base}-libvips.{ext}")
                row["vips"]["out"] = f"{base}-libvips.{ext}"
            else:
                row["vips"] = {"error": "no libvips equivalent"}
            row["im"] = (
                None
                if args.no_imagemagick
                else run_im(case["id"], fixture, fixture_path, n_im, f"{base}-imagemagick")
            )
            derive(row)
            if case["id"].startswith("thumb800") and not row["ours"].get("na"):
                add_psnr(pyvips, row, fixture_path, ref_cache)
            rows.append(row)

    threads = "every core (each at its default concurrency)" if args.all_threads else "one thread each"
    header = "\n".join(
        [
            f"imgflow vs libvips vs ImageMagick, {threads} — {env['date']}",
            "",
            f"- imgflow {env['git']}, {env['rustc']}; libvips {env['libvips']}; "
            f"ImageMagick {env['imagemagick']}",
            f"- {env['cpu']}; load average at start {env['load']}; {env['pinned']}",
            "- times: median ms over N runs after a warm-up (ImageMagick: whole `convert` "
            "processes, start-up and file I/O included); ratios < 1 mean imgflow is faster/smaller",
            "- peak RSS: VmHWM / ru_maxrss of the whole process over warm-up + N runs; "
            "net = peak − the idle process (after start-up and reading the input), in brackets "
            "after the first run alone (libvips's grows over runs: one malloc arena per thread); "
            "RSS targets use net over all runs",
            "- bytes vs libvips: our output bytes / libvips's at the same quality; "
            "PSNR: our resize (and libvips thumbnail's) against a libvips Lanczos3 resize "
            "of the full decode",
        ]
    )
    report = markdown(rows, cases_by_id, header)
    if args.baseline or args.floor:
        report += "\n\n" + before_after(rows, args.baseline)
    print(report)
    with open(os.path.join(outdir, "compare.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(outdir, "compare.json"), "w") as f:
        json.dump({"environment": env, "rows": rows}, f, indent=1, default=str)
    log(f"compare: results and every output image in {outdir}")


def case_extension(recipe):
    last = recipe.split("+")[0].split("/")[-1].split(",")[0].split(":")[-1]
    return {"jpeg": "jpg", "jpg": "jpg", "png": "png", "webp": "webp"}.get(last, "jpg")


def derive(row):
    ours, vips, im = row["ours"], row["vips"], row.get("im") or {}
    if ours.get("na") or ours.get("error"):
        return
    row["time_ratio_vips"] = ratio(ours.get("median_ms"), vips.get("median_ms"))
    row["time_ratio_im"] = ratio(ours.get("median_ms"), im.get("median_ms"))
    if ours.get("peak_rss_kib") and ours.get("idle_rss_kib") is not None:
        row["net_rss_ours"] = ours["peak_rss_kib"] - ours["idle_rss_kib"]
    if vips.get("peak_rss_kib") and vips.get("idle_rss_kib") is not None:
        row["net_rss_vips"] = vips["peak_rss_kib"] - vips["idle_rss_kib"]
    for side, result in (("ours", ours), ("vips", vips)):
        if result.get("first_peak_rss_kib") and result.get("idle_rss_kib") is not None:
            row[f"first_net_rss_{side}"] = result["first_peak_rss_kib"] - result["idle_rss_kib"]
    row["net_rss_ratio_vips"] = ratio(row.get("net_rss_ours"), row.get("net_rss_vips"))
    row["bytes_ratio_vips"] = ratio(ours.get("bytes"), vips.get("bytes"))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--vips-worker":
        vips_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 3 and sys.argv[1] == "--im-worker":
        im_worker(sys.argv[2])
    else:
        ensure_venv()
        main()
