//! A strided transposed convolution as stride² plain stride-1
//! convolutions, one per output phase ("sub-pixel" convolutions).
//!
//! Output pixel Y = s·y + a of a transposed convolution (stride s, kernel
//! K, padding p) sums input pixels y + ⌊(a + p)/s⌋ − t times kernel tap
//! ((a + p) mod s) + t·s, for t = 0, 1, …: every pixel of phase a reads
//! the same K/s taps at the same offsets. So each phase is a plain
//! convolution of the input with a K/s kernel cut from the weight, its
//! padding before the map K/s − 1 − ⌊(a + p)/s⌋. Done that way the
//! up-sampling convolutions need no col2im (a scatter-add per tap), and
//! their padding taps are skipped by `regions` like any stride-1
//! convolution's: on the U-Net's 2×2 → 4×4 map 44 % of the work read
//! padding, on 4×4 → 8×8 23 %. Only there: where the phases would not go
//! by regions (the autoencoder's 7×7 → 14×14, 14 %), four whole-map
//! convolutions and the interleave measured 2 % slower than col2im on
//! AVX-512, so larger maps keep col2im.

use rayon::prelude::*;

use super::{Geometry, par_zeroed, regions, small_from_big};

/// One phase: its plain convolution's geometry and where its taps sit in
/// the transposed kernel.
struct Phase {
    /// Row and column of the output pixels it makes, within each s×s block.
    at: [usize; 2],
    geometry: Geometry,
    /// Per axis, the transposed kernel's tap for each of the phase
    /// kernel's (ascending input pixel).
    taps: [Vec<usize>; 2],
}

/// Per axis: for phase `a`, its taps (ascending input pixel) and its
/// padding before the map; None where the phase would crop instead.
fn axis(a: usize, s: usize, k: usize, p: usize) -> Option<(Vec<usize>, usize)> {
    let (first, shift) = ((a + p) % s, (a + p) / s);
    let count = k / s;
    let pad = (count - 1).checked_sub(shift)?;
    // t runs down as the input pixel runs up.
    let taps = (0..count).rev().map(|t| first + t * s).collect();
    Some((taps, pad))
}

/// The phases of a transposed convolution `g` (big side = its output), or
/// None when it is not one this covers: every stride at least 2 and
/// dividing the kernel, the output exactly stride times the input.
fn phases(g: &Geometry) -> Option<Vec<Phase>> {
    let covered = (0..2).all(|i| {
        let s = g.stride[i];
        s >= 2 && g.k[i].is_multiple_of(s)
    });
    if !covered || g.h != g.stride[0] * g.oh || g.w != g.stride[1] * g.ow {
        return None;
    }
    let mut phases = Vec::new();
    for a in 0..g.stride[0] {
        for b in 0..g.stride[1] {
            let (rows, pad_y) = axis(a, g.stride[0], g.k[0], g.pad[0])?;
            let (cols, pad_x) = axis(b, g.stride[1], g.k[1], g.pad[1])?;
            let geometry = Geometry {
                batch: g.batch,
                c_big: g.c_small,
                h: g.oh,
                w: g.ow,
                c_small: g.c_big,
                oh: g.oh,
                ow: g.ow,
                k: [rows.len(), cols.len()],
                stride: [1, 1],
                pad: [pad_y, pad_x],
            };
            phases.push(Phase {
                at: [a, b],
                geometry,
                taps: [rows, cols],
            });
        }
    }
    Some(phases)
}

/// The phase's kernel [C_out, C_in, K/s, K/s] from the transposed
/// convolution's weight [C_in, C_out, kh, kw].
fn phase_weight(g: &Geometry, phase: &Phase, weight: &[f32]) -> Vec<f32> {
    let (c_in, c_out, [kh, kw]) = (g.c_small, g.c_big, g.k);
    let [rows, cols] = &phase.taps;
    let per_out = c_in * rows.len() * cols.len();
    let mut out = vec![0.0; c_out * per_out];
    out.par_chunks_exact_mut(per_out)
        .enumerate()
        .for_each(|(co, out)| {
            let mut at = 0;
            for ci in 0..c_in {
                let tap = &weight[(ci * c_out + co) * kh * kw..][..kh * kw];
                for &ki in rows {
                    for &kj in cols {
                        out[at] = tap[ki * kw + kj];
                        at += 1;
                    }
                }
            }
        });
    out
}

/// The transposed convolution `g` of `small` (its input), with its bias,
/// phase by phase; None where `phases` does not cover it.
pub(super) fn forward(
    g: &Geometry,
    small: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> Option<Vec<f32>> {
    let phases = phases(g).filter(|p| p.iter().all(|p| regions::applies(&p.geometry)))?;
    let parts: Vec<Vec<f32>> = phases
        .iter()
        .map(|p| small_from_big(&p.geometry, small, &phase_weight(g, p, weight), Some(bias)))
        .collect();
    // Interleave, image by image on the pool (`par_zeroed`: no serial
    // clearing of the output): phase pixel (y, x) is output pixel
    // (s0·y + a, s1·x + b). A phase image is [C_out, oh, ow].
    let ([s0, s1], phase_image) = (g.stride, g.c_big * g.pixels());
    let out = par_zeroed(g.batch * g.big_len(), g.big_len(), |j, image| {
        for (phase, part) in phases.iter().zip(&parts) {
            let [a, b] = phase.at;
            let src = &part[j * phase_image..][..phase_image];
            let planes = src
                .chunks_exact(g.pixels())
                .zip(image.chunks_exact_mut(g.h * g.w));
            for (src, dst) in planes {
                for (y, row) in src.chunks_exact(g.ow).enumerate() {
                    let line = &mut dst[(s0 * y + a) * g.w..][..g.w];
                    for (x, &v) in row.iter().enumerate() {
                        line[s1 * x + b] = v;
                    }
                }
            }
        }
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stride_2_kernel_4_splits_into_four_2x2_phases() {
        // Padding 1: phase 0 reads y − 1 (tap 3) and y (tap 1), padding
        // one before; phase 1 reads y (tap 2) and y + 1 (tap 0), none.
        assert_eq!(axis(0, 2, 4, 1), Some((vec![3, 1], 1)));
        assert_eq!(axis(1, 2, 4, 1), Some((vec![2, 0], 0)));
        // Padding 3 would crop the first phase's input: not covered.
        assert_eq!(axis(1, 2, 4, 3), None);
        let g = Geometry {
            batch: 2,
            c_big: 8,
            h: 8,
            w: 8,
            c_small: 16,
            oh: 4,
            ow: 4,
            k: [4, 4],
            stride: [2, 2],
            pad: [1, 1],
        };
        let split = phases(&g).expect("covered");
        assert_eq!(split.len(), 4);
        assert_eq!(split[3].at, [1, 1]);
        assert_eq!(split[0].geometry.pad, [1, 1]);
        assert_eq!(split[0].geometry.k, [2, 2]);
        // Odd output (padding_out) or a kernel the stride does not divide:
        // left to col2im.
        assert!(phases(&Geometry { h: 9, ..g }).is_none());
        assert!(phases(&Geometry { k: [3, 3], ..g }).is_none());
    }
}
