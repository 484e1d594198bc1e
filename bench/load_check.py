#!/usr/bin/env python3
"""Is a latentlab checkpoint loadable by PyTorch?

Loads RUN/checkpoint/{autoencoder,unet,unet_ema}.safetensors with
safetensors.torch.load_file, maps every tensor onto the PyTorch twin
(bench/torch_twin.py) by the explicit table below, loads with strict=True and
reports shapes. Then checks numbers:

  1. the twin autoencoder on the first test image of the embedded MNIST subset
     (first 8 reconstructed pixels, MSE, PSNR, a text picture);
  2. with --latentlab: the twin's mean PSNR over the 1,000 subset test images
     against `latentlab eval` on the same run;
  3. with --latentlab: DDIM-50 (eta 0) samples from the twin, started from
     latentlab's own noise stream (its xoshiro256** + Box-Muller, ported here),
     against the PNGs of `latentlab sample --seed 0`.

  /opt/latentlab-torch/bin/python bench/load_check.py --run /tmp/r1 --latentlab target/release/latentlab
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import tomllib
import zlib

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_twin as twin  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBSET = os.path.join(ROOT, "assets", "mnist-subset")

# --------------------------------------------------------------------------
# The name mapping.
#
# Every module of each model: (module path in the latentlab file, module path
# in the twin, kind). latentlab's field names are Burn struct fields; Vec<T>
# becomes ".i.", an Option<M> that is None writes nothing (the seed has no
# ResBlock skip convs: every block has cin == cout). The twin mirrors the
# field names, so the two paths are the same on every row; the table still
# says so row by row, so a renamed field shows up here and nowhere else.
#
# Per kind, the tensors written by Burn's BurnToPyTorchAdapter and their
# layout (checked below against the twin's shapes):
#   conv         weight [out, in, kh, kw], bias [out]         (as PyTorch)
#   conv_nobias  weight only
#   convT        weight [in, out, kh, kw], bias [out]         (as PyTorch)
#   linear       weight [out, in] (Burn keeps [in, out]: the adapter transposes), bias [out]
#   groupnorm    weight, bias   (Burn's gamma, beta: the adapter renames them)
# --------------------------------------------------------------------------

AE_MODULES = [
    ("encoder.0.conv", "encoder.0.conv", "conv"),
    ("encoder.0.cabs.0.conv1", "encoder.0.cabs.0.conv1", "conv_nobias"),
    ("encoder.0.cabs.0.conv2", "encoder.0.cabs.0.conv2", "conv_nobias"),
    ("encoder.0.cabs.0.attention.squeeze", "encoder.0.cabs.0.attention.squeeze", "conv_nobias"),
    ("encoder.0.cabs.0.attention.excite", "encoder.0.cabs.0.attention.excite", "conv_nobias"),
    ("encoder.1.conv", "encoder.1.conv", "conv"),
    ("to_latent", "to_latent", "linear"),
    ("from_latent", "from_latent", "linear"),
    ("decoder.0.up", "decoder.0.up", "convT"),
    ("decoder.0.cabs.0.conv1", "decoder.0.cabs.0.conv1", "conv_nobias"),
    ("decoder.0.cabs.0.conv2", "decoder.0.cabs.0.conv2", "conv_nobias"),
    ("decoder.0.cabs.0.attention.squeeze", "decoder.0.cabs.0.attention.squeeze", "conv_nobias"),
    ("decoder.0.cabs.0.attention.excite", "decoder.0.cabs.0.attention.excite", "conv_nobias"),
    ("decoder.1.up", "decoder.1.up", "convT"),
]


def _resblock(p):
    return [
        (f"{p}.norm1", f"{p}.norm1", "groupnorm"),
        (f"{p}.conv1", f"{p}.conv1", "conv"),
        (f"{p}.time", f"{p}.time", "linear"),
        (f"{p}.norm2", f"{p}.norm2", "groupnorm"),
        (f"{p}.conv2", f"{p}.conv2", "conv"),
    ]


def _attention(p):
    return [
        (f"{p}.norm", f"{p}.norm", "groupnorm"),
        (f"{p}.qkv", f"{p}.qkv", "linear"),
        (f"{p}.out", f"{p}.out", "linear"),
    ]


UNET_MODULES = (
    [("time1", "time1", "linear"), ("time2", "time2", "linear")]
    + [("down.0.entry", "down.0.entry", "conv")]
    + _resblock("down.0.blocks.0")
    + _resblock("down.0.blocks.1")
    + [("down.1.entry", "down.1.entry", "conv")]
    + _resblock("down.1.blocks.0")
    + _resblock("down.1.blocks.1")
    + [("down.2.entry", "down.2.entry", "conv")]
    + _resblock("down.2.blocks.0")
    + _attention("down.2.attention")
    + _resblock("mid1")
    + _attention("mid_attention")
    + _resblock("mid2")
    + [("up.0.up", "up.0.up", "convT")]
    + _resblock("up.0.blocks.0")
    + _attention("up.0.attention")
    + [("up.1.up", "up.1.up", "convT")]
    + _resblock("up.1.blocks.0")
    + _resblock("up.1.blocks.1")
    + [("up.2.up", "up.2.up", "convT"), ("out", "out", "conv")]
)

# file tensor suffix(es) -> twin parameter suffix, per kind. A file written
# without the adapter would say gamma/beta for GroupNorm: accepted too.
SUFFIXES = {
    "conv": {"weight": "weight", "bias": "bias"},
    "conv_nobias": {"weight": "weight"},
    "convT": {"weight": "weight", "bias": "bias"},
    "linear": {"weight": "weight", "bias": "bias"},
    "groupnorm": {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"},
}


def name_map(modules):
    """{file tensor name: (twin parameter name, kind)} for every possible name."""
    out = {}
    for src, dst, kind in modules:
        for s, d in SUFFIXES[kind].items():
            out[f"{src}.{s}"] = (f"{dst}.{d}", kind)
    return out


def map_state(tensors: dict, modules, model: torch.nn.Module, label: str):
    """Rename the file's tensors onto `model`'s parameters; returns the
    state dict and a list of problems (empty when everything matches)."""
    table = name_map(modules)
    expected = model.state_dict()
    state, problems, renamed, transposed = {}, [], [], []
    for name, t in tensors.items():
        if name not in table:
            problems.append(f"{label}: file tensor {name} {list(t.shape)} has no row in the mapping")
            continue
        dst, kind = table[name]
        if dst != name:
            renamed.append(f"{name} -> {dst}")
        want = expected.get(dst)
        if want is None:
            problems.append(f"{label}: {name} maps to {dst}, which the twin does not have")
            continue
        if kind == "linear" and t.dim() == 2 and tuple(t.shape) != tuple(want.shape) and tuple(t.shape[::-1]) == tuple(want.shape):
            t = t.t().contiguous()  # a file in Burn's own [in, out] layout
            transposed.append(name)
        if tuple(t.shape) != tuple(want.shape):
            problems.append(f"{label}: {name} has shape {list(t.shape)}, the twin's {dst} wants {list(want.shape)}")
        state[dst] = t
    for dst in expected:
        if dst not in state:
            problems.append(f"{label}: the twin's {dst} gets no tensor from the file")
    return state, problems, renamed, transposed


def load_model(path: str, modules, model, label):
    tensors = load_file(path)
    state, problems, renamed, transposed = map_state(tensors, modules, model, label)
    dtypes = sorted({str(t.dtype) for t in tensors.values()})
    print(f"{label}: {len(tensors)} tensors in {os.path.basename(path)}, dtypes {dtypes}, "
          f"{sum(t.numel() for t in tensors.values()):,} values; twin expects {len(model.state_dict())} "
          f"tensors, {twin.count_params(model):,} parameters")
    if renamed:
        print(f"  renamed: {renamed}")
    if transposed:
        print(f"  transposed (file in [in, out] layout): {transposed}")
    if problems:
        for p in problems:
            print("  PROBLEM:", p)
        print(f"  shapes all match: NO")
        return False
    model.load_state_dict(state, strict=True)
    print(f"  shapes all match: yes; load_state_dict(strict=True) succeeded")
    return True


# --------------------------------------------------------------------------
# latentlab's host RNG (src/rng.rs), for the same initial noise
# --------------------------------------------------------------------------

M64 = (1 << 64) - 1


class Rng:
    def __init__(self, seed: int):
        x = seed & M64
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        self.s = s

    @classmethod
    def derive(cls, seed: int, label: str):
        h = 0xCBF29CE484222325
        for b in label.encode():
            h = ((h ^ b) * 0x100000001B3) & M64
        return cls(seed ^ h)

    def next_u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def normals(self, n):
        out = []
        while len(out) < n:
            u1 = 1.0 - self.uniform()
            u2 = self.uniform()
            r = math.sqrt(-2.0 * math.log(u1))
            a = 2 * math.pi * u2
            out += [r * math.cos(a), r * math.sin(a)]
        return np.array(out[:n], dtype=np.float32)


def run_schedule(cfg: dict) -> twin.Schedule:
    d = cfg["diffusion"]
    steps, kind = d["timesteps"], d["schedule"]
    s = twin.Schedule(steps, d["beta_start"], d["beta_end"])
    if kind == "cosine":  # src/diffusion/schedule.rs
        f = lambda t: math.cos((t / steps + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = np.array([min(1 - f(i + 1.0) / f(float(i)), 0.999) for i in range(steps)])
    elif kind == "linear":
        betas = s.betas
    else:
        raise SystemExit(f"schedule {kind!r}: only linear and cosine are ported here")
    s.betas, s.alphas, s.alpha_bars = betas, 1 - betas, np.cumprod(1 - betas)
    return s


def read_png_gray(path: str) -> np.ndarray:
    """A minimal decoder for the 8-bit grayscale PNGs latentlab writes."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color == 0, f"{path}: not 8-bit grayscale"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows, prev = [], np.zeros(w, dtype=np.int32)
    for y in range(h):
        f = raw[y * (w + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=w, offset=y * (w + 1) + 1).astype(np.int32)
        cur = np.zeros(w, dtype=np.int32)
        for x in range(w):
            a = cur[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        rows.append(cur)
        prev = cur
    return np.array(rows, dtype=np.uint8)


def to_bytes(images: np.ndarray) -> np.ndarray:
    v = np.clip(images.astype(np.float32), 0, 1) * np.float32(255)
    return np.floor(v + np.float32(0.5)).astype(np.uint8)  # Rust f32::round on non-negatives


def ascii_pair(a: np.ndarray, b: np.ndarray) -> str:
    ramp = " .:-=+*#%@"
    lines = []
    for y in range(0, 28, 2):
        row = lambda img: "".join(ramp[min(int(img[y, x] * 9.999), 9)] for x in range(28))
        lines.append(f"  {row(a)}   {row(b)}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="/tmp/r1", help="a latentlab run directory")
    p.add_argument("--latentlab", help="latentlab binary: also cross-check eval PSNR and DDIM samples")
    p.add_argument("--show-mapping", action="store_true", help="print the whole name table")
    args = p.parse_args()
    torch.set_num_threads(1)
    ck = os.path.join(args.run, "checkpoint")
    cfg = tomllib.load(open(os.path.join(args.run, "config.toml"), "rb"))
    state = json.load(open(os.path.join(ck, "state.json")))

    a = cfg["autoencoder"]
    ae = twin.Autoencoder(a["channels"], a["cabs_per_level"], a["attention_reduction"], a["latent_dim"])
    unet = twin.Unet(a["latent_shape"][0], {k: cfg["unet"][k] for k in twin.UNET_CFG})
    ema = twin.Unet(a["latent_shape"][0], {k: cfg["unet"][k] for k in twin.UNET_CFG})
    if args.show_mapping:
        for label, mods in (("autoencoder", AE_MODULES), ("unet", UNET_MODULES)):
            for src, (dst, kind) in name_map(mods).items():
                if not src.endswith(("gamma", "beta")):
                    print(f"{label:12} {src:45} -> {dst:45} {kind}")
    ok = load_model(os.path.join(ck, "autoencoder.safetensors"), AE_MODULES, ae, "autoencoder")
    ok &= load_model(os.path.join(ck, "unet.safetensors"), UNET_MODULES, unet, "unet")
    has_ema = os.path.exists(os.path.join(ck, "unet_ema.safetensors"))
    if has_ema:
        ok &= load_model(os.path.join(ck, "unet_ema.safetensors"), UNET_MODULES, ema, "unet_ema")
    print(f"ALL SHAPES MATCH: {'yes' if ok else 'NO'}")
    if not ok:
        sys.exit(1)
    ae.eval()

    # 1. One image through the twin autoencoder.
    test = twin.read_idx(os.path.join(SUBSET, "t10k-images-idx3-ubyte.gz"))
    x = torch.from_numpy(test[:1].astype(np.float32) / 255.0).reshape(1, 1, 28, 28)
    with torch.no_grad():
        rec = ae(x)
    r, o = rec[0, 0].numpy(), x[0, 0].numpy()
    mse = float(np.mean((r.astype(np.float64) - o) ** 2))
    print("\nfirst test image of assets/mnist-subset through the twin autoencoder:")
    print(f"  reconstruction, first 8 pixels (row 0): {[round(float(v), 6) for v in r.reshape(-1)[:8]]}")
    print(f"  reconstruction, row 14 cols 10-17:      {[round(float(v), 4) for v in r[14, 10:18]]}")
    print(f"  original,       row 14 cols 10-17:      {[round(float(v), 4) for v in o[14, 10:18]]}")
    print(f"  MSE {mse:.6f}  PSNR {10 * math.log10(1 / mse):.3f} dB  "
          f"(all-zero guess: MSE {float(np.mean(o.astype(np.float64) ** 2)):.6f})")
    print(f"  latent[:4] {[round(float(v), 5) for v in ae.encode(x).detach()[0, :4]]}")
    print("  original                       reconstruction\n" + ascii_pair(o, r))

    # Over the whole subset test split (what `latentlab eval` reports).
    xs = torch.from_numpy(test.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        recs = torch.cat([ae(xs[i : i + 500]) for i in range(0, len(xs), 500)]).numpy().reshape(len(xs), -1)
    per = np.mean((recs.astype(np.float64) - xs.numpy().reshape(len(xs), -1)) ** 2, axis=1)
    twin_psnr = float(np.mean(np.minimum(10 * np.log10(1 / per), 100.0)))
    print(f"\ntwin mean PSNR over the {len(xs)} subset test images: {twin_psnr:.6f} dB")

    # The U-Net on a fixed input, for the record.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 1, 8, 8, generator=g)
    with torch.no_grad():
        eps = unet(z, [10, 500])
    print(f"unet eps on a fixed input: mean {eps.mean():.5f} std {eps.std():.5f} first {[round(float(v), 5) for v in eps.reshape(-1)[:4]]}")

    if not args.latentlab:
        return
    # 2. latentlab eval on the same run and test images.
    out = subprocess.run(
        [args.latentlab, "--threads", "1", "eval", "--run", args.run, "--data-dir", SUBSET, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True,
    )
    ll_psnr = json.loads(out.stdout)["psnr"]
    print(f"latentlab eval mean PSNR:                        {ll_psnr:.6f} dB  "
          f"(difference {twin_psnr - ll_psnr:+.2e} dB)")

    # 3. DDIM-50, eta 0, seed 0: same noise, same weights -> same images.
    n, seed = 4, 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [args.latentlab, "--threads", "1", "sample", "--run", args.run, "--n", str(n), "--sampler", "ddim",
             "--steps", "50", "--eta", "0", "--seed", str(seed), "--out", tmp, "--force"],
            check=True, stderr=subprocess.DEVNULL,
        )
        ll = np.stack([read_png_gray(os.path.join(tmp, f"sample_{i:04}.png")) for i in range(n)])
    schedule = run_schedule(cfg)
    c, h, w = a["latent_shape"]
    x = torch.from_numpy(Rng.derive(seed, "sampling").normals(n * c * h * w)).reshape(n, c, h, w)
    net = ema if has_ema else unet
    visits = twin.ddim_timesteps(len(schedule), 50)
    with torch.no_grad():
        for i, t in enumerate(visits):
            e = net(x, [t] * n)
            ab = float(schedule.alpha_bars[t])
            ab_prev = schedule.alpha_bar(visits[i + 1] if i + 1 < len(visits) else None)
            x0 = (x - e * math.sqrt(1 - ab)) / math.sqrt(ab)
            x = x0 * math.sqrt(ab_prev) + e * math.sqrt(1 - ab_prev)
        imgs = ae.decode(x.reshape(n, -1) / state["latent_scale"]).numpy().reshape(n, 28, 28)
    diff = np.abs(to_bytes(imgs).astype(int) - ll.astype(int))
    print(f"DDIM-50 samples ({'unet_ema' if has_ema else 'unet'}, {cfg['diffusion']['schedule']} schedule, "
          f"latent scale {state['latent_scale']:.5f}): twin vs latentlab PNG bytes: max |diff| {diff.max()}, "
          f"pixels differing {int((diff > 0).sum())} of {diff.size} "
          f"(latentlab's images: mean byte {ll.mean():.1f}, max {ll.max()})")


if __name__ == "__main__":
    main()
