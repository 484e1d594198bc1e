#!/usr/bin/env python3
"""Run `latentlab bench` and the PyTorch twin (bench/torch_twin.py) back to
back with the same threads, batch sizes and seconds, and print the four
throughputs of each with the ratio latentlab / PyTorch.

  /opt/latentlab-torch/bin/python bench/compare.py --threads 2 --batches 64 --seconds 3

Each latentlab row (one per backend:device it measured) is compared with the
twin on the same kind of device (cpu or cuda); the twin runs once per device
kind that appears.

With --rounds N both sides run N times, alternating, and each throughput is
the median of its N runs: on a shared or frequency-scaling machine a single
back-to-back pair varies by 10-20 % (PyTorch's autoencoder step most of all),
and alternating spreads any drift over both sides.

With --isa avx2 both sides run what an AVX2-only CPU (most laptops) runs,
on a CPU that also has AVX-512: PyTorch through its own switches
(ATEN_CPU_CAPABILITY, DNNL_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS), latentlab
as a build without its `avx512` feature:

  cargo build --release --no-default-features --features flex --target-dir target/avx2
  /opt/latentlab-torch/bin/python bench/compare.py --isa avx2 \
      --latentlab target/avx2/release/latentlab --backend flex --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
METRICS = [
    ("ae_train_images_per_sec", "AE train"),
    ("unet_train_images_per_sec", "U-Net train"),
    ("ddim50_images_per_sec", "DDIM-50 sample"),
    ("ddpm_images_per_sec", "DDPM-1000 sample"),
]


def load_avg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


LOADS = []  # (command, load average before, after)


def run_json(cmd: list[str]) -> list[dict]:
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    before = load_avg()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"command failed with exit code {out.returncode}: {' '.join(cmd)}")
    after = load_avg()
    LOADS.append({"command": os.path.basename(cmd[1] if cmd[0] == sys.executable else cmd[0]),
                  "seconds": round(time.perf_counter() - t0, 1), "load_before": before, "load_after": after})
    print(f"  ({time.perf_counter() - t0:.1f} s, load average {after})", file=sys.stderr, flush=True)
    return json.loads(out.stdout)


def merge_runs(runs: list[list[dict]], key) -> list[dict]:
    """The rows of the last run, each metric replaced by its median over the runs."""
    by_key = {}
    for rows in runs:
        for r in rows:
            by_key.setdefault(key(r), []).append(r)
    merged = []
    for r in runs[-1]:
        row = dict(r)
        for name, _ in METRICS:
            values = sorted(x[name] for x in by_key[key(r)] if x.get(name) is not None)
            row[name] = statistics.median(values) if values else None
        merged.append(row)
    return merged


def check_isa(rows: list[dict], isa: str) -> None:
    """Refuse to compare AVX2-capped PyTorch with AVX-512 latentlab kernels."""
    if isa == "native":
        return
    for r in rows:
        simd = r.get("simd")
        if simd is not None and simd != isa:
            sys.exit(f"latentlab's flex kernels ran {simd}, not {isa}: build it without the avx512 feature "
                     "(cargo build --release --no-default-features --features flex --target-dir target/avx2) "
                     "and pass --latentlab target/avx2/release/latentlab")


def device_kind(label: str, cuda_ok: bool) -> str:
    """latentlab labels are 'backend:device' with device auto|cpu|cuda|cuda:N."""
    dev = label.split(":", 1)[1] if ":" in label else "cpu"
    if dev == "auto":
        return "cuda" if cuda_ok else "cpu"
    return "cuda" if dev.startswith("cuda") else "cpu"


def fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latentlab", default=os.path.join(ROOT, "target", "release", "latentlab"))
    p.add_argument("--backend", help="passed to latentlab (flex|tch); default: every backend it has")
    p.add_argument("--device", help="passed to latentlab (tch: auto|cpu|cuda|cuda:N)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for both (0 = each one's default)")
    p.add_argument("--batches", default="64,256")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--full", action="store_true", help="also DDPM with all 1,000 steps")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.add_argument("--rounds", type=int, default=1, help="alternate both sides N times; report each throughput's median")
    p.add_argument("--isa", choices=["native", "avx2"], default="native",
                   help="avx2: cap both sides at AVX2, as on a CPU without AVX-512 (latentlab: a build without `avx512`)")
    args = p.parse_args()
    if args.isa == "avx2":
        # Set before torch is imported, here and in the twin's processes.
        os.environ.update(ATEN_CPU_CAPABILITY="avx2", DNNL_MAX_CPU_ISA="AVX2", MKL_ENABLE_INSTRUCTIONS="AVX2")

    if not os.access(args.latentlab, os.X_OK):
        sys.exit(f"{args.latentlab}: no latentlab binary there; build it (cargo build --release) or pass --latentlab")
    common = ["--threads", str(args.threads), "--batches", args.batches, "--seconds", str(args.seconds)]
    if args.full:
        common.append("--full")

    ll_cmd = [args.latentlab]
    if args.backend:
        ll_cmd += ["--backend", args.backend]
    if args.device:
        ll_cmd += ["--device", args.device]
    ll_cmd += ["bench", "--json"] + common
    import torch  # only to know whether 'auto' means cuda for the twin

    cuda_ok = torch.cuda.is_available()
    print(f"PyTorch CPU kernels: {torch.backends.cpu.get_cpu_capability()}", file=sys.stderr)
    ll_runs, twin_runs = [], {}
    for _ in range(max(1, args.rounds)):
        ll_runs.append(run_json(ll_cmd))
        check_isa(ll_runs[-1], args.isa)
        for kind in sorted({device_kind(r["backend"], cuda_ok) for r in ll_runs[-1]}):
            rows = run_json([sys.executable, os.path.join(HERE, "torch_twin.py"), "bench", "--json", "--device", kind] + common)
            twin_runs.setdefault(kind, []).append(rows)
    ll_rows = merge_runs(ll_runs, key=lambda r: (r["backend"], r["batch"]))
    twin = {kind: {r["batch"]: r for r in merge_runs(runs, key=lambda r: r["batch"])} for kind, runs in twin_runs.items()}

    out = []
    for r in ll_rows:
        t = twin[device_kind(r["backend"], cuda_ok)][r["batch"]]
        row = {"latentlab": r["backend"], "torch": t["backend"], "batch": r["batch"], "threads": args.threads,
               "simd": r.get("simd"), "isa": args.isa}
        for key, _ in METRICS:
            a, b = r.get(key), t.get(key)
            row[key] = {"latentlab": a, "torch": b, "ratio": (a / b) if (a is not None and b) else None}
        out.append(row)

    if args.json:
        print(json.dumps({"rows": out, "runs": LOADS, "cpus": os.cpu_count()}, indent=2))
        return
    print()
    print(f"{'measurement (images/s)':<22} {'batch':>5} {'latentlab':>18} {'PyTorch':>16} {'ratio':>7}")
    for row in out:
        for key, name in METRICS:
            m = row[key]
            if m["latentlab"] is None and m["torch"] is None:
                continue
            ratio = f"{m['ratio']:.2f}" if m["ratio"] is not None else "-"
            left = f"{fmt(m['latentlab'])} ({row['latentlab']})"
            right = f"{fmt(m['torch'])} ({row['torch']})"
            print(f"{name:<22} {row['batch']:>5} {left:>18} {right:>16} {ratio:>7}")
    print("\nratio = latentlab / PyTorch (above 1: latentlab is faster)")
    simd = sorted({row["simd"] for row in out if row.get("simd")})
    if simd:
        print(f"flex kernels: {', '.join(simd)}; PyTorch CPU kernels: {torch.backends.cpu.get_cpu_capability()}")
    for r in LOADS:
        print(f"{r['command']}: {r['seconds']} s, load average (1/5/15 min) {r['load_before']} before, "
              f"{r['load_after']} after, on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
