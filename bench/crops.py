#!/usr/bin/env python3
"""Smart and face crops against a centre crop and libvips, in one run.

    bench/crops.sh            (builds the release binary and the fixtures first)

Each case is one process run (decode, find the window, resize, encode, write),
timed by wall clock; cases are interleaved, repeated, and the median kept.
Prints a Markdown table; ratios are against the centre crop of the same tool
and size, measured in the same run.
"""
import os, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
imgflow = os.path.join(root, "target", "release", "imgflow")
fixtures = os.path.join(root, "bench", "fixtures")
repeats = int(os.environ.get("REPEATS", "7"))
cpu = os.environ.get("CPU", "1")
out = tempfile.mkdtemp(prefix="imgflow-crops-")

def ours(src, recipe):
    return [imgflow, "process", src, "-o", os.path.join(out, "o.jpg"), "--recipe", recipe]

def vips(*args):
    return ["vips", *args]

cases = []
for size, name, square in [("1 MP", "photo-1mp.jpg", 866), ("12 MP", "photo-12mp.jpg", 3000)]:
    src = os.path.join(fixtures, name)
    o = os.path.join(out, "v.jpg")
    thumb = "resize,w=256,h=256,fit=cover"
    crop = f"crop,w={square},h={square}"
    cases += [
        (size, "256 px thumbnail", "imgflow", "centre", ours(src, f"{thumb}/jpeg")),
        (size, "256 px thumbnail", "imgflow", "smart", ours(src, f"{thumb},gravity=smart/jpeg")),
        (size, "256 px thumbnail", "imgflow", "face", ours(src, f"{thumb},gravity=face/jpeg")),
        (size, "256 px thumbnail", "libvips", "centre", vips("thumbnail", src, o, "256", "--height", "256", "--crop", "centre")),
        (size, "256 px thumbnail", "libvips", "attention", vips("thumbnail", src, o, "256", "--height", "256", "--crop", "attention")),
        (size, f"{square}² crop, full res", "imgflow", "centre", ours(src, f"{crop},gravity=center/jpeg")),
        (size, f"{square}² crop, full res", "imgflow", "smart", ours(src, f"{crop},gravity=smart/jpeg")),
        (size, f"{square}² crop, full res", "imgflow", "face", ours(src, f"{crop},gravity=face/jpeg")),
        (size, f"{square}² crop, full res", "libvips", "centre", vips("smartcrop", src, o, str(square), str(square), "--interesting", "centre")),
        (size, f"{square}² crop, full res", "libvips", "attention", vips("smartcrop", src, o, str(square), str(square), "--interesting", "attention")),
    ]

times = {i: [] for i in range(len(cases))}
for _ in range(repeats):
    for i, case in enumerate(cases):
        cmd = ["taskset", "-c", cpu, *case[4]]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[i].append((time.perf_counter() - start) * 1000)

medians = {i: statistics.median(t) for i, t in times.items()}
base = {}
for i, (size, job, tool, gravity, _) in enumerate(cases):
    if gravity == "centre":
        base[(size, job, tool)] = medians[i]
print(f"repeats: {repeats}, pinned to CPU {cpu}; median wall ms per process run\n")
print("| source | job | tool | gravity | median ms | min ms | vs the tool's centre crop |")
print("|---|---|---|---|---:|---:|---:|")
for i, (size, job, tool, gravity, _) in enumerate(cases):
    ratio = medians[i] / base[(size, job, tool)]
    print(f"| {size} | {job} | {tool} | {gravity} | {medians[i]:.0f} | {min(times[i]):.0f} | {ratio:.2f} |")
