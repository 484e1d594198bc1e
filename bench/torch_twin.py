#!/usr/bin/env python3
"""PyTorch twin of latentlab's seed models, for speed and correctness
comparisons.

The models follow DESIGN.md "Seed architecture" with the seed's two bugs fixed
(attention logits scaled by 1/sqrt(head_dim); no noise at the last reverse
step), and mirror latentlab's module tree (src/model/*.rs), so the parameter
names equal the ones latentlab writes to its PyTorch-style .safetensors files.

Modes:
  bench  the same four throughputs as `latentlab bench` (src/bench.rs)
  train  the seed recipe end to end (AE 10 epochs, U-Net 100 epochs, batch 64)
         on random images or on MNIST IDX files (--data-dir)

Run with the venv's python: /opt/latentlab-torch/bin/python bench/torch_twin.py ...
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

AE_PARAMS = 224_945
UNET_PARAMS = 624_097
SEED = 42  # presets/seed.toml: seed

# --------------------------------------------------------------------------
# Configuration (presets/seed.toml)
# --------------------------------------------------------------------------

AE_CFG = dict(channels=[16, 32], cabs_per_level=[1, 0], reduction=8, latent_dim=64)
LATENT_SHAPE = (1, 8, 8)
UNET_CFG = dict(
    channels=[16, 32, 64],
    down_blocks=[2, 2, 1],
    up_blocks=[0, 2, 1],
    attention=[False, False, True],
    mid_attention=True,
    heads=8,
    head_dim=4,
    time_dim=16,
    groups=8,
)
T_STEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
AE_LR, UNET_LR = 1e-4, 1e-3
IMAGE_SIDE = 28

# --------------------------------------------------------------------------
# Autoencoder (src/model/attention.rs, src/model/autoencoder.rs)
# --------------------------------------------------------------------------


class ChannelAttention(nn.Module):
    """Global average pool -> 1x1 conv (c -> c/r) -> ReLU -> 1x1 conv -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.squeeze = nn.Conv2d(channels, hidden, 1, bias=False)
        self.excite = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x):
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))


class Cab(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> channel attention, plus the input."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, x):
        return self.attention(self.conv2(F.relu(self.conv1(x)))) + x


class EncoderLevel(nn.Module):
    def __init__(self, cin, cout, n_cabs, reduction):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.cabs = nn.ModuleList([Cab(cout, reduction) for _ in range(n_cabs)])


class DecoderLevel(nn.Module):
    def __init__(self, cin, cout, n_cabs, reduction):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.cabs = nn.ModuleList([Cab(cout, reduction) for _ in range(n_cabs)])


class Autoencoder(nn.Module):
    def __init__(self, channels=None, cabs_per_level=None, reduction=8, latent_dim=64):
        super().__init__()
        channels = channels or AE_CFG["channels"]
        cabs_per_level = cabs_per_level or AE_CFG["cabs_per_level"]
        levels = len(channels)
        side = IMAGE_SIDE
        for _ in range(levels):
            side = (side + 1) // 2
        self.bottom_side = side
        self.bottom_channels = channels[-1]
        flat = channels[-1] * side * side
        self.encoder = nn.ModuleList(
            [
                EncoderLevel(1 if i == 0 else channels[i - 1], channels[i], cabs_per_level[i], reduction)
                for i in range(levels)
            ]
        )
        self.to_latent = nn.Linear(flat, latent_dim)
        self.from_latent = nn.Linear(latent_dim, flat)
        # Decoder level i undoes encoder level i, deepest first; its CABs work
        # at the channel count of the level above (as in the seed).
        self.decoder = nn.ModuleList(
            [
                DecoderLevel(
                    channels[i],
                    1 if i == 0 else channels[i - 1],
                    0 if i == 0 else cabs_per_level[i - 1],
                    reduction,
                )
                for i in reversed(range(levels))
            ]
        )

    def encode(self, images):
        x = images
        for level in self.encoder:
            x = level.conv(x)
            for cab in level.cabs:
                x = cab(x)
            x = F.relu(x)
        return self.to_latent(x.flatten(1))

    def decode(self, latents):
        b = latents.shape[0]
        x = self.from_latent(latents).reshape(b, self.bottom_channels, self.bottom_side, self.bottom_side)
        last = len(self.decoder) - 1
        for i, level in enumerate(self.decoder):
            x = level.up(x)
            for cab in level.cabs:
                x = cab(x)
            x = torch.sigmoid(x) if i == last else F.relu(x)
        return x

    def forward(self, images):
        return self.decode(self.encode(images))


# --------------------------------------------------------------------------
# U-Net (src/model/unet.rs)
# --------------------------------------------------------------------------


def sinusoidal_embedding(timesteps, dim: int) -> np.ndarray:
    """Half sines then half cosines, freqs exp(-ln(10000) i/(half-1)).
    Computed on the host in float64, as latentlab does."""
    half = dim // 2
    scale = math.log(10000.0) / (half - 1)
    freqs = np.exp(-scale * np.arange(half, dtype=np.float64))
    args = np.asarray(timesteps, dtype=np.float64)[:, None] * freqs[None, :]
    return np.concatenate([np.sin(args), np.cos(args)], axis=1).astype(np.float32)


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def norm(groups, channels):
    return nn.GroupNorm(min(groups, channels), channels)  # eps 1e-5, affine: as Burn


class ResBlock(nn.Module):
    def __init__(self, cin, cout, time_dim=16, groups=8):
        super().__init__()
        self.norm1 = norm(groups, cin)
        self.conv1 = conv3(cin, cout)
        self.time = nn.Linear(time_dim, cout)
        self.norm2 = norm(groups, cout)
        self.conv2 = conv3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb_act):
        """`temb_act` is SiLU(time embedding), shared by every block."""
        h = F.silu(self.conv1(F.silu(self.norm1(x))))
        h = h + self.time(temb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class Attention(nn.Module):
    """Multi-head self-attention over positions, residual. Logits scaled by
    1/sqrt(head_dim) (the seed multiplied by sqrt(d): fixed)."""

    def __init__(self, channels, heads=8, head_dim=4, groups=8):
        super().__init__()
        inner = heads * head_dim
        self.norm = norm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * inner)
        self.out = nn.Linear(inner, channels)
        self.heads = heads
        self.head_dim = head_dim

    def forward(self, x):
        b, c, h, w = x.shape
        n = h * w
        tokens = self.norm(x).reshape(b, c, n).transpose(1, 2)  # [B, N, C]
        qkv = self.qkv(tokens).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, N, d]
        weights = torch.softmax((q @ k.transpose(2, 3)) * (1.0 / math.sqrt(self.head_dim)), dim=3)
        attended = (weights @ v).transpose(1, 2).reshape(b, n, self.heads * self.head_dim)
        out = self.out(attended).transpose(1, 2).reshape(b, c, h, w)
        return out + x


class Level(nn.Module):
    def __init__(self, entry=None, up=None, blocks=(), attention=None):
        super().__init__()
        self.entry = entry
        self.up = up
        self.blocks = nn.ModuleList(blocks)
        self.attention = attention

    def forward(self, x, temb_act):
        if self.entry is not None:
            x = self.entry(x)
        if self.up is not None:
            x = self.up(x)
        for block in self.blocks:
            x = block(x, temb_act)
        if self.attention is not None:
            x = self.attention(x)
        return x


class Unet(nn.Module):
    def __init__(self, in_channels=1, cfg=None):
        super().__init__()
        cfg = dict(UNET_CFG, **(cfg or {}))
        ch = cfg["channels"]
        levels = len(ch)
        td, g = cfg["time_dim"], cfg["groups"]

        def attn(on, c):
            return Attention(c, cfg["heads"], cfg["head_dim"], g) if on else None

        def blocks(n, c):
            return [ResBlock(c, c, td, g) for _ in range(n)]

        self.time1 = nn.Linear(td, td)
        self.time2 = nn.Linear(td, td)
        self.down = nn.ModuleList(
            [
                Level(
                    entry=conv3(in_channels, ch[0]) if i == 0 else conv3(ch[i - 1], ch[i], 2),
                    blocks=blocks(cfg["down_blocks"][i], ch[i]),
                    attention=attn(cfg["attention"][i], ch[i]),
                )
                for i in range(levels)
            ]
        )
        deepest = ch[-1]
        self.mid1 = ResBlock(deepest, deepest, td, g)
        self.mid_attention = attn(cfg["mid_attention"], deepest)
        self.mid2 = ResBlock(deepest, deepest, td, g)
        ups = []
        for i in reversed(range(levels)):
            cin = (deepest if i == levels - 1 else ch[i + 1]) + ch[i]
            if i == 0:
                up = nn.ConvTranspose2d(cin, ch[i], 3, padding=1)
            else:
                up = nn.ConvTranspose2d(cin, ch[i], 4, stride=2, padding=1)
            ups.append(
                Level(up=up, blocks=blocks(cfg["up_blocks"][i], ch[i]), attention=attn(cfg["attention"][i], ch[i]))
            )
        self.up = nn.ModuleList(ups)
        self.out = conv3(ch[0], in_channels)
        self.time_dim = td

    def forward(self, x, timesteps):
        """Predict the noise in x [B, C, H, W] at integer `timesteps` (host ints, one per sample)."""
        feats = torch.from_numpy(sinusoidal_embedding(timesteps, self.time_dim)).to(x.device, non_blocking=True)
        temb = self.time2(F.silu(self.time1(feats)))
        temb_act = F.silu(temb)
        skips = []
        for level in self.down:
            x = level(x, temb_act)
            skips.append(x)
        x = self.mid1(x, temb_act)
        if self.mid_attention is not None:
            x = self.mid_attention(x)
        x = self.mid2(x, temb_act)
        for level in self.up:
            x = level(torch.cat([x, skips.pop()], dim=1), temb_act)
        return self.out(x)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def build_models(device="cpu"):
    ae = Autoencoder(**AE_CFG).to(device)
    unet = Unet(LATENT_SHAPE[0]).to(device)
    n_ae, n_unet = count_params(ae), count_params(unet)
    assert n_ae == AE_PARAMS, f"autoencoder has {n_ae} parameters, expected {AE_PARAMS}"
    assert n_unet == UNET_PARAMS, f"U-Net has {n_unet} parameters, expected {UNET_PARAMS}"
    return ae, unet


# --------------------------------------------------------------------------
# Diffusion (src/diffusion/schedule.rs, src/diffusion/sampler.rs)
# --------------------------------------------------------------------------


class Schedule:
    """Linear beta schedule; all in float64 on the host, like latentlab."""

    def __init__(self, steps=T_STEPS, start=BETA_START, end=BETA_END):
        i = np.arange(steps, dtype=np.float64)
        self.betas = start + (end - start) * i / (steps - 1)
        self.alphas = 1.0 - self.betas
        self.alpha_bars = np.cumprod(self.alphas)

    def __len__(self):
        return len(self.betas)

    def alpha_bar(self, t):
        return 1.0 if t is None else float(self.alpha_bars[t])


def ddim_timesteps(total: int, steps: int):
    steps = min(max(steps, 1), total)
    if steps == 1:
        return [total - 1]
    ts = []
    for i in range(steps):
        t = int(math.floor(i * (total - 1) / (steps - 1) + 0.5))  # Rust f64::round (half away from 0)
        if not ts or ts[-1] != t:
            ts.append(t)
    return ts[::-1]


@torch.no_grad()
def sample(unet, schedule, n, sampler="ddim", steps=50, eta=0.0, seed=3, device="cpu"):
    """Reverse diffusion, batched; returns latents [n, 64]. Noise is drawn on
    the host and uploaded (as latentlab does). DDPM uses sigma^2 = beta and
    adds no noise at t = 0."""
    c, h, w = LATENT_SHAPE
    rng = np.random.default_rng(seed)

    def noise():
        return torch.from_numpy(rng.standard_normal((n, c, h, w), dtype=np.float32)).to(device)

    x = noise()
    visits = list(range(len(schedule)))[::-1] if sampler == "ddpm" else ddim_timesteps(len(schedule), steps)
    for i, t in enumerate(visits):
        eps = unet(x, [t] * n)
        ab = float(schedule.alpha_bars[t])
        if sampler == "ddpm":
            beta = float(schedule.betas[t])
            mean = (x - eps * (beta / math.sqrt(1.0 - ab))) / math.sqrt(float(schedule.alphas[t]))
            x = mean if t == 0 else mean + noise() * math.sqrt(beta)
        else:
            x0 = (x - eps * math.sqrt(1.0 - ab)) / math.sqrt(ab)
            ab_prev = schedule.alpha_bar(visits[i + 1] if i + 1 < len(visits) else None)
            sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab)) * math.sqrt(max(1 - ab / ab_prev, 0.0))
            d = math.sqrt(max(1 - ab_prev - sigma * sigma, 0.0))
            x = x0 * math.sqrt(ab_prev) + eps * d
            if sigma > 0:
                x = x + noise() * sigma
    return x.reshape(n, c * h * w)


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def adam(params, lr):
    return torch.optim.Adam(params, lr=lr, eps=1e-8)  # betas (0.9, 0.999): PyTorch and Burn defaults


def select_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {name}: this PyTorch sees no CUDA device")
    return torch.device(name)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_threads(n: int):
    if n > 0:
        torch.set_num_threads(n)


def read_idx(path: str) -> np.ndarray:
    """An IDX file, plain or .gz."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(data_dir: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]; pass a directory with the MNIST IDX files")


# --------------------------------------------------------------------------
# bench mode (src/bench.rs)
# --------------------------------------------------------------------------


def time_steps(seconds, step, device):
    """3 warm-up steps (each read back), then steps for about `seconds`,
    reading the loss back every 8 steps and at the end; returns steps/s."""
    for _ in range(3):
        step().item()
    sync(device)
    start = time.perf_counter()
    steps = 0
    while True:
        loss = step()
        steps += 1
        if steps % 8 == 0 or time.perf_counter() - start >= seconds:
            loss.item()
            if time.perf_counter() - start >= seconds:
                break
    sync(device)
    return steps / (time.perf_counter() - start)


def bench_one(batch: int, seconds: float, full: bool, device: torch.device, label: str):
    b = batch
    c, h, w = LATENT_SHAPE
    data = torch.from_numpy(np.random.default_rng(1).random((b * 4, 1, 28, 28), dtype=np.float32)).to(device)
    rng = np.random.default_rng(2)

    def batch_idx():
        return torch.from_numpy(rng.integers(0, b * 4, size=b, dtype=np.int64)).to(device)

    torch.manual_seed(SEED)
    ae = Autoencoder(**AE_CFG).to(device)
    opt = adam(ae.parameters(), AE_LR)

    def ae_step():
        x = data.index_select(0, batch_idx())
        loss = F.mse_loss(ae(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    ae_rate = time_steps(seconds, ae_step, device) * b

    ae.requires_grad_(False)  # the frozen encoder (latentlab: ae.valid())
    schedule = Schedule()
    unet = Unet(c).to(device)
    opt = adam(unet.parameters(), UNET_LR)

    def unet_step():
        with torch.no_grad():
            x0 = ae.encode(data.index_select(0, batch_idx())).reshape(b, c, h, w)
        ts = rng.integers(0, len(schedule), size=b)
        noise = torch.from_numpy(rng.standard_normal((b, c, h, w), dtype=np.float32)).to(device)
        ab = schedule.alpha_bars[ts]
        a = torch.from_numpy(np.sqrt(ab).astype(np.float32).reshape(b, 1, 1, 1)).to(device)
        s = torch.from_numpy(np.sqrt(1.0 - ab).astype(np.float32).reshape(b, 1, 1, 1)).to(device)
        x_t = x0 * a + noise * s
        loss = F.mse_loss(unet(x_t, ts), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    unet_rate = time_steps(seconds, unet_step, device) * b

    def sample_rate(sampler, steps):
        with torch.no_grad():
            sample(unet, schedule, b, "ddim", 2, device=device)  # warm-up, as latentlab
            sync(device)
            start = time.perf_counter()
            latents = sample(unet, schedule, b, sampler, steps, eta=0.0, seed=3, device=device)
            ae.decode(latents).cpu()
            sync(device)
            return b / (time.perf_counter() - start)

    return {
        "backend": label,
        "batch": b,
        "ae_train_images_per_sec": ae_rate,
        "unet_train_images_per_sec": unet_rate,
        "ddim50_images_per_sec": sample_rate("ddim", 50),
        "ddpm_images_per_sec": sample_rate("ddpm", len(schedule)) if full else None,
    }


def cmd_bench(args):
    set_threads(args.threads)
    device = select_device(args.device)
    label = f"torch:{device.type}"
    batches = [int(x) for x in args.batches.split(",") if x.strip()]
    if any(bb < 1 or bb > 8192 for bb in batches):
        sys.exit("--batches: each must be between 1 and 8192")
    results = []
    for bb in batches:
        print(f"measuring {label} at batch {bb} (threads {torch.get_num_threads()}) ...", file=sys.stderr)
        results.append(bench_one(bb, args.seconds, args.full, device, label))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'backend':<12} {'batch':>6} {'AE train':>14} {'U-Net train':>14} {'DDIM-50':>12} {'DDPM-T':>12}")
        for r in results:
            ddpm = f"{r['ddpm_images_per_sec']:.2f} i/s" if r["ddpm_images_per_sec"] is not None else "-"
            print(
                f"{r['backend']:<12} {r['batch']:>6} {r['ae_train_images_per_sec']:>10.0f} i/s "
                f"{r['unet_train_images_per_sec']:>10.0f} i/s {r['ddim50_images_per_sec']:>8.1f} i/s {ddpm:>12}"
            )


# --------------------------------------------------------------------------
# train mode: the seed recipe end to end
# --------------------------------------------------------------------------


def load_images(args, device):
    if args.data_dir:
        train = read_idx(find_idx(args.data_dir, "train-images-idx3-ubyte"))
        test = read_idx(find_idx(args.data_dir, "t10k-images-idx3-ubyte"))
        src = f"IDX files in {args.data_dir}"
    else:
        rng = np.random.default_rng(1)
        train = rng.integers(0, 256, size=(args.random_train, 28, 28), dtype=np.uint8)
        test = rng.integers(0, 256, size=(args.random_test, 28, 28), dtype=np.uint8)
        src = f"random uniform images ({args.random_train} train / {args.random_test} test)"
    to_t = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28).to(device)
    return to_t(train), to_t(test), src


def cmd_train(args):
    set_threads(args.threads)
    device = select_device(args.device)
    train, test, src = load_images(args, device)
    n, bs = train.shape[0], args.batch
    steps_per_epoch = (n + bs - 1) // bs
    print(f"data: {src}; device {device}; threads {torch.get_num_threads()}; batch {bs}", flush=True)
    torch.manual_seed(SEED)
    ae, _ = build_models("cpu")
    ae = ae.to(device)
    rng = np.random.default_rng(SEED)
    total_start = time.perf_counter()

    # Stage 1: autoencoder.
    opt = adam(ae.parameters(), AE_LR)
    sync(device)
    t0 = time.perf_counter()
    for epoch in range(args.epochs_ae):
        e0 = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n)).to(device)
        total = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            x = train.index_select(0, order[s * bs : (s + 1) * bs])
            loss = F.mse_loss(ae(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        mean = (total / steps_per_epoch).item()
        extra = ""
        if not args.no_extras:  # latentlab scores the test split after each epoch
            with torch.no_grad():
                mse = sum(
                    F.mse_loss(ae(test[i : i + 1000]), test[i : i + 1000], reduction="sum").item()
                    for i in range(0, test.shape[0], 1000)
                ) / test.numel()
            extra = f"  test mse {mse:.5f} psnr {10 * math.log10(1 / max(mse, 1e-12)):.2f} dB"
        sync(device)
        dt = time.perf_counter() - e0
        print(f"ae    epoch {epoch + 1:3}  loss {mean:.5f}  {dt:7.2f} s  {n / dt:9.0f} img/s{extra}", flush=True)
    sync(device)
    ae_time = time.perf_counter() - t0

    # Stage 2: latent DDPM on the frozen encoder's latents (encoded once).
    ae.requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([ae.encode(train[i : i + 1000]) for i in range(0, n, 1000)])
    c, h, w = LATENT_SHAPE
    schedule = Schedule()
    torch.manual_seed(SEED + 1)
    unet = Unet(c).to(device)
    assert count_params(unet) == UNET_PARAMS
    opt = adam(unet.parameters(), UNET_LR)
    sync(device)
    t0 = time.perf_counter()
    for epoch in range(args.epochs_unet):
        e0 = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n)).to(device)
        total = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            idx = order[s * bs : (s + 1) * bs]
            m = idx.shape[0]
            x0 = latents.index_select(0, idx).reshape(m, c, h, w)
            ts = rng.integers(0, len(schedule), size=m)
            noise = torch.from_numpy(rng.standard_normal((m, c, h, w), dtype=np.float32)).to(device)
            ab = schedule.alpha_bars[ts]
            a = torch.from_numpy(np.sqrt(ab).astype(np.float32).reshape(m, 1, 1, 1)).to(device)
            sd = torch.from_numpy(np.sqrt(1 - ab).astype(np.float32).reshape(m, 1, 1, 1)).to(device)
            loss = F.mse_loss(unet(x0 * a + noise * sd, ts), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        mean = (total / steps_per_epoch).item()
        if not args.no_extras:  # latentlab previews 16 DDIM-50 samples after each epoch
            ae.decode(sample(unet, schedule, 16, "ddim", 50, seed=SEED, device=device)).cpu()
        sync(device)
        dt = time.perf_counter() - e0
        print(f"unet  epoch {epoch + 1:3}  loss {mean:.5f}  {dt:7.2f} s  {n / dt:9.0f} img/s", flush=True)
    sync(device)
    unet_time = time.perf_counter() - t0
    wall = time.perf_counter() - total_start
    summary = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "train_images": n,
        "batch": bs,
        "ae_epochs": args.epochs_ae,
        "unet_epochs": args.epochs_unet,
        "ae_seconds": ae_time,
        "ae_images_per_sec": n * args.epochs_ae / ae_time if ae_time > 0 else None,
        "unet_seconds": unet_time,
        "unet_images_per_sec": n * args.epochs_unet / unet_time if unet_time > 0 else None,
        "wall_seconds": wall,
        "extras": not args.no_extras,
    }
    print(json.dumps(summary, indent=2))
    if args.save:
        from safetensors.torch import save_file

        os.makedirs(args.save, exist_ok=True)
        for name, mod in (("autoencoder", ae), ("unet", unet)):
            sd = {k: v.detach().cpu().contiguous() for k, v in mod.state_dict().items()}
            save_file(sd, os.path.join(args.save, f"{name}.safetensors"), metadata={"format": "pt"})
        print(f"saved weights to {args.save}/", file=sys.stderr)


# --------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("bench", help="throughputs measured as `latentlab bench` measures them")
    b.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = PyTorch's default)")
    b.add_argument("--batches", default="64,256")
    b.add_argument("--seconds", type=float, default=5.0, help="seconds of timing per training measurement")
    b.add_argument("--full", action="store_true", help="also time DDPM sampling with all 1,000 steps")
    b.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    b.add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="the seed recipe end to end")
    t.add_argument("--data-dir", help="directory with MNIST IDX files (plain or .gz); random images if absent")
    t.add_argument("--random-train", type=int, default=60000)
    t.add_argument("--random-test", type=int, default=10000)
    t.add_argument("--epochs-ae", type=int, default=10)
    t.add_argument("--epochs-unet", type=int, default=100)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--no-extras", action="store_true", help="skip the per-epoch test score and sample preview")
    t.add_argument("--save", help="write autoencoder/unet .safetensors (latentlab's names) to this directory")

    c = sub.add_parser("params", help="print the parameter counts")

    args = p.parse_args(argv)
    if args.cmd == "bench":
        cmd_bench(args)
    elif args.cmd == "train":
        cmd_train(args)
    else:
        ae, unet = build_models()
        print(json.dumps({"autoencoder": count_params(ae), "unet": count_params(unet)}))


if __name__ == "__main__":
    main()
