//! Stride-1 convolutions on small maps, by regions of the output that read
//! the same taps.
//!
//! im2col over a whole map multiplies every tap that falls in the padding
//! by zero: on the U-Net's 2×2 maps 5 of a 3×3 kernel's 9 taps, on 4×4
//! maps 31 % of the GEMM's work. Here the output splits into rectangles
//! (top, middle and bottom rows × left, middle and right columns, for a 3×3
//! kernel with padding 1) whose pixels all read the same taps, every one
//! inside the image; each region is its own GEMM with only those taps:
//! [C_small, C_big·taps] · im2col of the region.
//!
//! A region's rows are short (one pixel on a 2×2 map), so its columns run
//! image-minor: the chunk is first transposed to [C_big·h·w, images], where
//! a region row of all the chunk's images is one contiguous copy, and the
//! output is gathered the same way and transposed back (`transpose.rs`).
//!
//! The chunks are `small_from_big`'s; within one, every output value comes
//! from one GEMM whose size depends on the shapes alone, so results do not
//! depend on the thread count.

use std::ops::Range;

use rayon::prelude::*;

use super::transpose::transpose;
use super::{Geometry, gemm, with_plane, with_scratch};

/// Go by regions when at least this share of a whole-map im2col's taps
/// read padding: under a 3×3 kernel the U-Net's 2×2 and 4×4 maps (56 and
/// 31 %). Not its 8×8 maps (16 %) nor the autoencoder's 7×7 (18 %): there
/// the transposes and region copies cost what the smaller GEMMs save with
/// AVX-512 (a U-Net step 4-6 % slower at 1 and 2 threads) and saved only
/// 1-2 % with AVX2.
const MIN_WASTE: f64 = 0.2;

/// Images per chunk at least (where the batch has them): a corner region
/// is one pixel, and its GEMM should still fill the microkernel's 16 rows.
const MIN_IMAGES: usize = 16;

/// Images per chunk of `small_from_big` going by regions: its usual chunk,
/// but at least `MIN_IMAGES`. From the shapes alone (determinism).
pub(super) fn chunk_images(g: &Geometry) -> usize {
    g.chunk().max(MIN_IMAGES).min(g.batch)
}

/// A rectangle of output pixels and the kernel rows and columns that all of
/// them read inside the image.
#[derive(Clone, Debug, PartialEq)]
struct Region {
    y: Range<usize>,
    x: Range<usize>,
    ki: Range<usize>,
    kj: Range<usize>,
}

impl Region {
    fn pixels(&self) -> usize {
        self.y.len() * self.x.len()
    }
    fn taps(&self) -> usize {
        self.ki.len() * self.kj.len()
    }
}

/// Runs of output coordinates (of `out`) whose kernel offsets inside an
/// input axis of `size` are the same, with those offsets: output o reads
/// input o + k − pad, inside for k in [pad − o, size + pad − o).
fn bands(out: usize, size: usize, k: usize, pad: usize) -> Vec<(Range<usize>, Range<usize>)> {
    let mut bands: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for o in 0..out {
        let taps = pad.saturating_sub(o)..(size + pad).saturating_sub(o).min(k);
        match bands.last_mut() {
            Some((run, t)) if *t == taps => run.end = o + 1,
            _ => bands.push((o..o + 1, taps)),
        }
    }
    bands
}

/// The regions of a stride-1 convolution (padding before the map is
/// `g.pad`, after it whatever `g.oh` and `g.ow` leave, as in the sub-pixel
/// convolutions); None for other strides, 1×1, or pixels that read no tap
/// at all (padding as wide as the kernel).
fn regions(g: &Geometry) -> Option<Vec<Region>> {
    if g.stride != [1, 1] || g.pointwise() {
        return None;
    }
    let rows = bands(g.oh, g.h, g.k[0], g.pad[0]);
    let cols = bands(g.ow, g.w, g.k[1], g.pad[1]);
    let all: Vec<Region> = rows
        .iter()
        .flat_map(|(y, ki)| {
            cols.iter().map(|(x, kj)| Region {
                y: y.clone(),
                x: x.clone(),
                ki: ki.clone(),
                kj: kj.clone(),
            })
        })
        .collect();
    all.iter().all(|r| r.taps() > 0).then_some(all)
}

/// The share of a whole-map im2col's taps that read padding.
fn waste(g: &Geometry, regions: &[Region]) -> f64 {
    let read: usize = regions.iter().map(|r| r.taps() * r.pixels()).sum();
    1.0 - read as f64 / (g.k[0] * g.k[1] * g.pixels()) as f64
}

/// The regions of `g` where going by them pays (see `MIN_WASTE`).
fn paying(g: &Geometry) -> Option<Vec<Region>> {
    regions(g).filter(|r| waste(g, r) >= MIN_WASTE)
}

/// Whether `small_from_big` goes by regions for this geometry.
pub(super) fn applies(g: &Geometry) -> bool {
    paying(g).is_some()
}

/// The regions and the weight with the input channel innermost, once per
/// convolution.
pub(super) struct Plan {
    regions: Vec<Region>,
    /// [C_small, kh, kw, C_big]: a region's taps in one kernel row are then
    /// one run of columns, so its GEMM reads the weight in place, one
    /// kernel row at a time, instead of a copy per region.
    weight: Vec<f32>,
}

impl Plan {
    /// The plan where going by regions pays (see `MIN_WASTE`).
    pub(super) fn new(g: &Geometry, wm: &[f32]) -> Option<Plan> {
        let regions = paying(g)?;
        let taps = g.k[0] * g.k[1];
        // Per output channel [C_big, taps] -> [taps, C_big], in parallel:
        // on two threads a serial copy of every weight was ~5 % of a step.
        let mut weight = vec![0.0; wm.len()];
        weight
            .par_chunks_exact_mut(g.rows())
            .zip(wm.par_chunks_exact(g.rows()))
            .for_each(|(out, w)| transpose(w, taps, [g.c_big, taps], out, g.c_big));
        Some(Plan { regions, weight })
    }
}

/// One chunk of `small_from_big`: the chunk's images `big` into their
/// outputs `out` (n·C_small·oh·ow), region by region.
pub(super) fn chunk(g: &Geometry, plan: &Plan, big: &[f32], out: &mut [f32], bias: Option<&[f32]>) {
    let n = big.len() / g.big_len();
    let (plane_len, px) = (g.h * g.w, g.pixels());
    // Column blocks of the regions, one after another in one buffer.
    let sizes: Vec<usize> = plan
        .regions
        .iter()
        .map(|r| g.c_big * r.taps() * r.pixels() * n)
        .collect();
    let product = g.c_small * px * n;
    let planes = g.big_len().max(g.small_len()) * n;
    with_scratch(sizes.iter().sum(), product, |cols, prod| {
        with_plane(planes, |planes| {
            // The chunk image-minor, [C_big·h·w, images]; then each
            // channel's rows of every region.
            transpose(big, g.big_len(), [n, g.big_len()], planes, n);
            for ci in 0..g.c_big {
                let plane = &planes[ci * plane_len * n..][..plane_len * n];
                let mut at = 0;
                for (r, size) in plan.regions.iter().zip(&sizes) {
                    region_rows(g, r, plane, n, ci, &mut cols[at..][..*size]);
                    at += size;
                }
            }
            // The output image-minor too, [C_small·oh·ow, images], reusing
            // the planes, then transposed into the images.
            let result = &mut planes[..g.small_len() * n];
            let mut at = 0;
            for (r, size) in plan.regions.iter().zip(&sizes) {
                let ld = r.pixels() * n;
                let prod = &mut prod[..g.c_small * ld];
                // One GEMM per kernel row, accumulating: its taps are a run
                // of the weight's columns and of the region's column rows.
                let rows = r.kj.len() * g.c_big;
                for (i, ki) in r.ki.clone().enumerate() {
                    let w = &plan.weight[(ki * g.k[1] + r.kj.start) * g.c_big..];
                    let block = &cols[at + i * rows * ld..][..rows * ld];
                    gemm(
                        [g.c_small, ld, rows],
                        prod,
                        ld,
                        i > 0,
                        w,
                        [g.rows(), 1],
                        block,
                        [ld, 1],
                    );
                }
                at += size;
                // A region row is one run of the result, with the bias.
                let width = r.x.len() * n;
                for (co, row) in prod.chunks_exact(ld).enumerate() {
                    let b = bias.map_or(0.0, |b| b[co]);
                    for (yy, oy) in r.y.clone().enumerate() {
                        let dst = &mut result[(co * px + oy * g.ow + r.x.start) * n..][..width];
                        for (d, &v) in dst.iter_mut().zip(&row[yy * width..][..width]) {
                            *d = v + b;
                        }
                    }
                }
            }
            transpose(result, n, [g.small_len(), n], out, g.small_len());
        });
    });
}

/// Channel `ci`'s rows of a region's columns [taps·C_big, pixels·images]
/// (channel innermost, like `Plan::weight`), from its plane [h·w, images]:
/// a region row is one contiguous copy.
fn region_rows(g: &Geometry, r: &Region, plane: &[f32], n: usize, ci: usize, cols: &mut [f32]) {
    let (ld, width) = (r.pixels() * n, r.x.len() * n);
    for (i, ki) in r.ki.clone().enumerate() {
        for (j, kj) in r.kj.clone().enumerate() {
            let row = (i * r.kj.len() + j) * g.c_big + ci;
            let dst = &mut cols[row * ld..][..ld];
            for (yy, oy) in r.y.clone().enumerate() {
                // Inside by construction: oy + ki ≥ pad, ox + kj ≥ pad.
                let (iy, ix) = (oy + ki - g.pad[0], r.x.start + kj - g.pad[1]);
                dst[yy * width..][..width].copy_from_slice(&plane[(iy * g.w + ix) * n..][..width]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(side: usize, k: usize, pad: usize) -> Geometry {
        Geometry {
            batch: 1,
            c_big: 1,
            h: side,
            w: side,
            c_small: 1,
            oh: side + 2 * pad + 1 - k,
            ow: side + 2 * pad + 1 - k,
            k: [k, k],
            stride: [1, 1],
            pad: [pad, pad],
        }
    }

    #[test]
    fn bands_group_rows_that_read_the_same_kernel_rows() {
        // 3×3, padding 1: the edge rows miss one kernel row each.
        assert_eq!(
            bands(8, 8, 3, 1),
            [(0..1, 1..3), (1..7, 0..3), (7..8, 0..2)]
        );
        assert_eq!(bands(2, 2, 3, 1), [(0..1, 1..3), (1..2, 0..2)]);
        assert_eq!(bands(1, 1, 3, 1), [(0..1, 1..2)]);
        // 5×5, padding 2: two edge bands on each side.
        assert_eq!(
            bands(6, 6, 5, 2),
            [
                (0..1, 2..5),
                (1..2, 1..5),
                (2..4, 0..5),
                (4..5, 0..4),
                (5..6, 0..3)
            ]
        );
    }

    #[test]
    fn only_maps_where_padding_wastes_a_fifth_go_by_regions() {
        let plan = |side| Plan::new(&geometry(side, 3, 1), &[0.0; 9]).is_some();
        assert!(plan(2) && plan(4));
        assert!(!plan(7) && !plan(8) && !plan(28));
    }

    #[test]
    fn regions_cover_every_pixel_once_and_only_where_padding_wastes_work() {
        for (side, k, pad) in [
            (8, 3, 1),
            (2, 3, 1),
            (1, 3, 1),
            (7, 5, 2),
            (4, 3, 2),
            (2, 3, 3),
        ] {
            let g = geometry(side, k, pad);
            let Some(regions) = regions(&g) else {
                // Pixels that read nothing exist only with padding as
                // wide as the kernel.
                assert!(pad >= k, "{side} {k} {pad}");
                continue;
            };
            let mut seen = vec![0; g.oh * g.ow];
            for r in &regions {
                for y in r.y.clone() {
                    for x in r.x.clone() {
                        seen[y * g.ow + x] += 1;
                        // Every tap read is inside the image.
                        for ki in r.ki.clone() {
                            assert!((pad..g.h + pad).contains(&(y + ki)));
                        }
                        for kj in r.kj.clone() {
                            assert!((pad..g.w + pad).contains(&(x + kj)));
                        }
                    }
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{side} {k} {pad}: {seen:?}");
        }
        assert!(regions(&geometry(2, 3, 3)).is_none());
        // No padding: one region, every tap.
        assert_eq!(regions(&geometry(8, 3, 0)).unwrap().len(), 1);
        // Padding after the map only (a sub-pixel phase): the last row and
        // column miss their second tap.
        let after = Geometry {
            oh: 4,
            ow: 4,
            ..geometry(4, 2, 0)
        };
        let last = Region {
            y: 3..4,
            x: 3..4,
            ki: 0..1,
            kj: 0..1,
        };
        assert_eq!(regions(&after).unwrap().last(), Some(&last));
        assert!(regions(&geometry(8, 1, 0)).is_none());
    }
}
