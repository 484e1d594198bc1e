#!/usr/bin/env python3
"""cFID against U-Net passes, one panel per run, as an SVG with no
dependencies beyond Python: scripts/plot_samplers.py OUT.svg LABEL=ROWS.tsv ...
where each TSV comes from scripts/sampler_sweep.sh (seeds are averaged)."""
import math
import sys
from collections import defaultdict

COLOURS = {"ddim": "#1f77b4", "dpmpp": "#d62728", "ddpm": "#2ca02c"}
NAMES = {"ddim": "DDIM (η = 0)", "dpmpp": "DPM-Solver++(2M)", "ddpm": "DDPM-1000"}
W, H, PAD_L, PAD_B, PAD_T, PAD_R = 420, 320, 56, 44, 30, 12
X_MIN, X_MAX = 4, 1200


def load(path):
    """(sampler, steps) -> mean cFID over the seeds in the file."""
    scores = defaultdict(list)
    for line in open(path):
        f = line.split("\t")
        if len(f) >= 4:
            scores[(f[0], int(f[1]))].append(float(f[3]))
    return {k: sum(v) / len(v) for k, v in scores.items()}


def panel(x0, label, means, y_max):
    out = []
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(steps):
        return x0 + PAD_L + pw * math.log(steps / X_MIN) / math.log(X_MAX / X_MIN)

    def sy(v):
        return PAD_T + ph * (1 - min(v, y_max) / y_max)

    out.append(f'<text x="{x0 + PAD_L + pw / 2}" y="18" text-anchor="middle" '
               f'font-weight="bold">{label}: cFID (lower is better), mean of 3 seeds</text>')
    out.append(f'<rect x="{x0 + PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" '
               'fill="none" stroke="#888"/>')
    for steps in (5, 10, 20, 50, 100, 1000):
        x = sx(steps)
        out.append(f'<line x1="{x}" y1="{PAD_T}" x2="{x}" y2="{PAD_T + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x}" y="{PAD_T + ph + 16}" text-anchor="middle">{steps}</text>')
    tick = 50 if y_max > 150 else 25
    for v in range(0, int(y_max) + 1, tick):
        y = sy(v)
        out.append(f'<line x1="{x0 + PAD_L}" y1="{y}" x2="{x0 + PAD_L + pw}" y2="{y}" stroke="#eee"/>')
        out.append(f'<text x="{x0 + PAD_L - 6}" y="{y + 4}" text-anchor="end">{v}</text>')
    out.append(f'<text x="{x0 + PAD_L + pw / 2}" y="{H - 6}" text-anchor="middle">'
               'U-Net passes (log scale)</text>')
    for sampler, colour in COLOURS.items():
        pts = sorted((s, v) for (k, s), v in means.items() if k == sampler)
        if not pts:
            continue
        path = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for s, v in pts:
            out.append(f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="3.5" fill="{colour}"/>')
            if v > y_max:  # off the scale: say where it really is
                out.append(f'<text x="{sx(s) + 7:.1f}" y="{sy(v) + 12:.1f}" fill="{colour}">'
                           f'{v:.0f} ↑</text>')
    return out


def main():
    out_path, runs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    data = [(label, load(path)) for label, path in runs]
    # One y range for every panel, so panels compare; off-scale points
    # (a failed 5-step run) sit on the top edge.
    y_max = min(250.0, max(v for _, m in data for v in m.values()) * 1.1)
    y_max = math.ceil(y_max / 25) * 25
    width = W * len(data)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 24}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{H + 24}" fill="white"/>']
    for i, (label, means) in enumerate(data):
        svg += panel(i * W, label, means, y_max)
    x = PAD_L
    for sampler, colour in COLOURS.items():
        svg.append(f'<rect x="{x}" y="{H + 8}" width="14" height="4" fill="{colour}"/>')
        svg.append(f'<text x="{x + 20}" y="{H + 14}">{NAMES[sampler]}</text>')
        x += 170
    svg.append("</svg>")
    open(out_path, "w").write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
