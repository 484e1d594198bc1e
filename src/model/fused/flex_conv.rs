//! Convolutions for flex as im2col / col2im around one GEMM per chunk of
//! images.
//!
//! flex takes a convolution's input gradient (and a transposed convolution's
//! forward) as a direct transposed convolution and its weight gradient as a
//! convolution over swapped copies; on the U-Net's 8×8, 4×4 and 2×2 maps
//! those loops, not the arithmetic, were a third of a training step. Every
//! one of the six kernels (forward, input and weight gradient of the plain
//! and the transposed convolution) is one of three products between a
//! "big" image side (the plain convolution's input) and a "small" side (its
//! output), with the weight as a matrix Wm [C_small, C_big·kh·kw]:
//!
//! - small = Wm · im2col(big)       plain forward, transposed input gradient
//! - big = col2im(Wmᵀ · small)      plain input gradient, transposed forward
//! - dWm = Σ small · im2col(big)ᵀ   both weight gradients
//!
//! Images go in fixed chunks of about `COLUMNS` output pixels, so a 2×2 map
//! still makes one wide GEMM instead of sixty-four thin ones; chunks run in
//! parallel, each GEMM on one thread. Chunking depends only on the shapes
//! and partial weight gradients are summed in chunk order, so results do
//! not depend on the thread count.
//!
//! On the smallest maps, where many taps read padding, `small = Wm ·
//! im2col(big)` goes by regions of output pixels that read the same taps
//! (`regions.rs`), and a strided transposed convolution's forward by one
//! stride-1 convolution per output phase (`subpixel.rs`).

use std::cell::RefCell;

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

use super::ConvSpec;
use super::par_zeroed::par_zeroed;

mod regions;
mod subpixel;
mod transpose;

/// Output pixels per GEMM: wide enough for the microkernels to stream,
/// small enough that a chunk's columns stay in L2.
const COLUMNS: usize = 512;
/// Chunks per batch at least: enough to keep every core of a laptop busy.
const MIN_CHUNKS: usize = 8;

/// A plain convolution's shapes, which also describe its transpose.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_big: usize,
    h: usize,
    w: usize,
    c_small: usize,
    oh: usize,
    ow: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Geometry {
    /// Rows of im2col: C_big·kh·kw.
    fn rows(&self) -> usize {
        self.c_big * self.k[0] * self.k[1]
    }
    fn big_len(&self) -> usize {
        self.c_big * self.h * self.w
    }
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }
    fn small_len(&self) -> usize {
        self.c_small * self.pixels()
    }
    /// A 1×1 convolution without stride or padding: im2col is the image.
    fn pointwise(&self) -> bool {
        self.k == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0]
    }
    /// The big side is exactly `stride` times the small one (3×3 padding 1
    /// at any stride, 4×4 stride 2 padding 1 on even maps): split into
    /// stride² phase planes of oh×ow pixels, every tap reads one of them at
    /// one flat offset from each output pixel.
    fn phased(&self) -> bool {
        self.h == self.stride[0] * self.oh && self.w == self.stride[1] * self.ow
    }
    /// Images per chunk, from the shapes alone (determinism): about
    /// `COLUMNS` output pixels, but at least `MIN_CHUNKS` chunks when the
    /// batch allows, so small maps still spread over the threads.
    fn chunk(&self) -> usize {
        let wide = COLUMNS.div_ceil(self.pixels());
        wide.min(self.batch.div_ceil(MIN_CHUNKS)).max(1)
    }
}

/// Whether these kernels cover the convolution: f32, one group, no
/// dilation, and a non-empty batch and output. Others keep Burn's kernels
/// (and Burn's errors for shapes that make no sense).
pub fn supported(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>, spec: &ConvSpec) -> bool {
    let (xs, ws) = (x.shape(), weight.shape());
    if x.dtype() != DType::F32 || spec.groups != 1 || spec.dilation != [1, 1] {
        return false;
    }
    if xs.num_dims() != 4 || ws.num_dims() != 4 || xs[0] == 0 {
        return false;
    }
    (0..2).all(|i| {
        let (size, k, p) = (xs[2 + i], ws[2 + i], spec.padding[i]);
        if spec.transposed {
            size > 0 && (size - 1) * spec.stride[i] + k + spec.padding_out[i] > 2 * p
        } else {
            size + 2 * p >= k
        }
    })
}

/// The geometry from x [N, C, H, W] and weight: [C_out, C_in, kh, kw] for a
/// plain convolution, [C_in, C_out, kh, kw] for a transposed one (whose
/// input is the small side).
fn geometry(x: &Shape, weight: &Shape, spec: &ConvSpec) -> Geometry {
    let k = [weight[2], weight[3]];
    let (s, p) = (spec.stride, spec.padding);
    if spec.transposed {
        let big = |i: usize| (x[2 + i] - 1) * s[i] + k[i] + spec.padding_out[i] - 2 * p[i];
        Geometry {
            batch: x[0],
            c_big: weight[1],
            h: big(0),
            w: big(1),
            c_small: x[1],
            oh: x[2],
            ow: x[3],
            k,
            stride: s,
            pad: p,
        }
    } else {
        let small = |i: usize| (x[2 + i] + 2 * p[i] - k[i]) / s[i] + 1;
        Geometry {
            batch: x[0],
            c_big: x[1],
            h: x[2],
            w: x[3],
            c_small: weight[0],
            oh: small(0),
            ow: small(1),
            k,
            stride: s,
            pad: p,
        }
    }
}

fn values(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    t.to_contiguous()
}

fn slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(data, shape), &Default::default())
}

thread_local! {
    /// Per-thread scratch (im2col columns, gathered images), kept across
    /// calls so a training step allocates none of it.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

thread_local! {
    /// One channel, with the slots or margins its walk reads as padding.
    static PLANE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with a plane of `len` values (left as the last call had them).
fn with_plane<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    PLANE.with(|p| {
        let plane = &mut *p.borrow_mut();
        plane.resize(len, 0.0);
        f(&mut plane[..len])
    })
}

/// Run `f` with two scratch buffers of at least these lengths.
fn with_scratch<R>(a: usize, b: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let (x, y) = &mut *s.borrow_mut();
        if x.len() < a {
            x.resize(a, 0.0);
        }
        if y.len() < b {
            y.resize(b, 0.0);
        }
        f(&mut x[..a], &mut y[..b])
    })
}

/// How im2col and col2im visit a chunk of images, chosen from the shapes
/// alone.
enum Walk {
    /// `Geometry::phased` shapes: a column row is one contiguous,
    /// vectorised copy out of the chunk's phase planes. It replaced a
    /// gather per value: sampling +25–45%, U-Net training +10–40%. One
    /// `Flat` per chunk size (the last chunk may be shorter).
    Flat(Vec<Flat>),
    /// The rest: for every kernel offset and output pixel the input pixel
    /// it reads, or h·w (one past the plane: a zero) in the padding,
    /// [kh·kw, oh·ow]. Branch-free gathers and scatters.
    Taps(Vec<u32>),
}

/// One channel of a chunk's images, stacked as if they were one tall
/// image, split into its phases [stride0·stride1, images·oh, ow] (for
/// stride 1, the channels themselves) between zero margins: tap (ki, kj) at
/// output pixel p of the chunk reads `starts[tap] + p`, which wraps around
/// a phase row's end, into the next image or into the margins exactly where
/// the tap reads padding. The masks zero those reads. A whole chunk makes
/// one copy per column row, not one per image: on 2×2 and 4×4 maps those
/// were copies of 4 and 16 values.
struct Flat {
    /// Images in the chunk.
    images: usize,
    /// [kh·kw, images·oh·ow]: all ones where the tap reads inside its image.
    masks: Vec<u32>,
    starts: Vec<usize>,
    /// Where the first phase begins.
    lead: usize,
    /// The whole plane, margins included.
    len: usize,
}

fn walk(g: &Geometry) -> Walk {
    let [kh, kw] = g.k;
    let mut table = Vec::with_capacity(kh * kw * g.pixels());
    let padding = (g.h * g.w) as u32;
    for ki in 0..kh {
        for kj in 0..kw {
            for oy in 0..g.oh {
                let iy = (oy * g.stride[0] + ki)
                    .checked_sub(g.pad[0])
                    .filter(|&y| y < g.h);
                for ox in 0..g.ow {
                    let ix = (ox * g.stride[1] + kj)
                        .checked_sub(g.pad[1])
                        .filter(|&x| x < g.w);
                    table.push(match (iy, ix) {
                        (Some(y), Some(x)) => (y * g.w + x) as u32,
                        _ => padding,
                    });
                }
            }
        }
    }
    if !g.phased() {
        return Walk::Taps(table);
    }
    let nb = g.chunk();
    let mut sizes = vec![nb.min(g.batch)];
    if g.batch > nb && !g.batch.is_multiple_of(nb) {
        sizes.push(g.batch % nb);
    }
    Walk::Flat(
        sizes
            .into_iter()
            .map(|n| flat(g, &table, padding, n))
            .collect(),
    )
}

/// The `Flat` walk of a chunk of `images`, from one image's tap table.
fn flat(g: &Geometry, table: &[u32], padding: u32, images: usize) -> Flat {
    let [kh, kw] = g.k;
    let (px, run) = (g.pixels(), images * g.pixels());
    let masks = table
        .chunks_exact(px)
        .flat_map(|tap| std::iter::repeat_n(tap, images).flatten())
        .map(|&i| if i == padding { 0 } else { !0 })
        .collect();
    // Tap offset ki − ph = stride·dy + phase row, likewise for columns.
    let [s0, s1] = g.stride.map(|s| s as isize);
    let offsets: Vec<isize> = (0..kh * kw)
        .map(|kk| {
            let (dy, dx) = (
                (kk / kw) as isize - g.pad[0] as isize,
                (kk % kw) as isize - g.pad[1] as isize,
            );
            let phase = dy.rem_euclid(s0) * s1 + dx.rem_euclid(s1);
            phase * run as isize + dy.div_euclid(s0) * g.ow as isize + dx.div_euclid(s1)
        })
        .collect();
    let lead = (-offsets.iter().copied().min().unwrap_or(0)).max(0) as usize;
    let starts: Vec<usize> = offsets
        .iter()
        .map(|&o| (lead as isize + o) as usize)
        .collect();
    let phases = g.stride[0] * g.stride[1] * run;
    let len = starts
        .iter()
        .map(|&s| s + run)
        .fold(lead + phases, usize::max);
    Flat {
        images,
        masks,
        starts,
        lead,
        len,
    }
}

impl Flat {
    /// The walk for a chunk of `images` (the chunk sizes `walk` made).
    fn of(flats: &[Flat], images: usize) -> &Flat {
        flats
            .iter()
            .find(|f| f.images == images)
            .expect("chunks come in the sizes walk() planned")
    }
    /// Output pixels of the chunk: the length of a column row.
    fn run(&self, g: &Geometry) -> usize {
        self.images * g.pixels()
    }
}

/// im2col through the tap table (any stride; best on small maps).
fn im2col_taps(g: &Geometry, taps: &[u32], img: &[f32], cols: &mut [f32], ld: usize, col0: usize) {
    let (px, plane_len) = (g.pixels(), g.h * g.w);
    with_plane(plane_len + 1, |plane| {
        plane[plane_len] = 0.0;
        for (c, channel) in img.chunks_exact(plane_len).enumerate() {
            plane[..plane_len].copy_from_slice(channel);
            for (kk, tap) in taps.chunks_exact(px).enumerate() {
                let row = c * taps.len() / px + kk;
                let dst = &mut cols[row * ld + col0..][..px];
                for (d, &i) in dst.iter_mut().zip(tap) {
                    *d = plane[i as usize];
                }
            }
        }
    });
}

/// col2im through the tap table.
fn col2im_taps(g: &Geometry, taps: &[u32], cols: &[f32], ld: usize, col0: usize, img: &mut [f32]) {
    let (px, plane_len) = (g.pixels(), g.h * g.w);
    // Padding taps land in the extra slot, which is then dropped.
    with_plane(plane_len + 1, |plane| {
        for (c, channel) in img.chunks_exact_mut(plane_len).enumerate() {
            plane[..plane_len].copy_from_slice(channel);
            for (kk, tap) in taps.chunks_exact(px).enumerate() {
                let row = c * taps.len() / px + kk;
                let src = &cols[row * ld + col0..][..px];
                for (&v, &i) in src.iter().zip(tap) {
                    plane[i as usize] += v;
                }
            }
            channel.copy_from_slice(&plane[..plane_len]);
        }
    });
}

/// Run `f` with `Walk::Flat`'s plane, margins zeroed.
fn with_flat_plane<R>(g: &Geometry, flat: &Flat, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let phases = g.stride[0] * g.stride[1] * flat.run(g);
    with_plane(flat.len, |plane| {
        plane[..flat.lead].fill(0.0);
        plane[flat.lead + phases..].fill(0.0);
        f(plane)
    })
}

/// A channel [h, w] into its phases [s0·s1, oh, ow], at pixel `at` of
/// phase planes `run` pixels long (see `Flat`).
#[inline(always)] // into each of multiversion!'s copies
fn split_phases(g: &Geometry, channel: &[f32], phases: &mut [f32], run: usize, at: usize) {
    let ([s0, s1], px) = (g.stride, g.pixels());
    if s0 == 1 && s1 == 1 {
        phases[at..][..px].copy_from_slice(channel);
        return;
    }
    for p in 0..s0 * s1 {
        let phase = &mut phases[p * run + at..][..px];
        let (py, px_) = (p / s1, p % s1);
        for (r, out) in phase.chunks_exact_mut(g.ow).enumerate() {
            let row = &channel[(r * s0 + py) * g.w..][..g.w];
            for (c, o) in out.iter_mut().enumerate() {
                *o = row[c * s1 + px_];
            }
        }
    }
}

/// The inverse of `split_phases`.
#[inline(always)] // into each of multiversion!'s copies
fn merge_phases(g: &Geometry, phases: &[f32], run: usize, at: usize, channel: &mut [f32]) {
    let ([s0, s1], px) = (g.stride, g.pixels());
    if s0 == 1 && s1 == 1 {
        channel.copy_from_slice(&phases[at..][..px]);
        return;
    }
    for p in 0..s0 * s1 {
        let phase = &phases[p * run + at..][..px];
        let (py, px_) = (p / s1, p % s1);
        for (r, src) in phase.chunks_exact(g.ow).enumerate() {
            let row = &mut channel[(r * s0 + py) * g.w..][..g.w];
            for (c, &v) in src.iter().enumerate() {
                row[c * s1 + px_] = v;
            }
        }
    }
}

/// im2col of a chunk of a phased convolution: one masked copy per column
/// row.
fn im2col_flat(g: &Geometry, flat: &Flat, images: &[f32], cols: &mut [f32]) {
    with_flat_plane(g, flat, |plane| {
        im2col_flat_kernel(g, flat, plane, images, cols)
    });
}

/// col2im of a chunk of a phased convolution: one masked add per column
/// row. Masked values add +0.0, to the margins or to pixels the tap does
/// not reach.
fn col2im_flat(g: &Geometry, flat: &Flat, cols: &[f32], images: &mut [f32]) {
    with_flat_plane(g, flat, |plane| {
        col2im_flat_kernel(g, flat, plane, cols, images)
    });
}

multiversion!(im2col_flat_kernel, im2col_flat_body, (g: &Geometry, flat: &Flat, plane: &mut [f32], images: &[f32], cols: &mut [f32]));
multiversion!(col2im_flat_kernel, col2im_flat_body, (g: &Geometry, flat: &Flat, plane: &mut [f32], cols: &[f32], images: &mut [f32]));

// The kernel bodies take the plane as an argument and hold no closures: a
// closure would not inherit multiversion!'s target features.
#[inline(always)]
fn im2col_flat_body(
    g: &Geometry,
    flat: &Flat,
    plane: &mut [f32],
    images: &[f32],
    cols: &mut [f32],
) {
    let (taps, run) = (g.k[0] * g.k[1], flat.run(g));
    for c in 0..g.c_big {
        split_channel(g, flat, images, c, plane);
        for (kk, mask) in flat.masks.chunks_exact(run).enumerate() {
            let src = &plane[flat.starts[kk]..][..run];
            let dst = &mut cols[(c * taps + kk) * run..][..run];
            for ((d, s), m) in dst.iter_mut().zip(src).zip(mask) {
                *d = f32::from_bits(s.to_bits() & m);
            }
        }
    }
}

#[inline(always)]
fn col2im_flat_body(
    g: &Geometry,
    flat: &Flat,
    plane: &mut [f32],
    cols: &[f32],
    images: &mut [f32],
) {
    let (taps, run) = (g.k[0] * g.k[1], flat.run(g));
    for c in 0..g.c_big {
        split_channel(g, flat, images, c, plane);
        for (kk, mask) in flat.masks.chunks_exact(run).enumerate() {
            let src = &cols[(c * taps + kk) * run..][..run];
            let dst = &mut plane[flat.starts[kk]..][..run];
            for ((d, s), m) in dst.iter_mut().zip(src).zip(mask) {
                *d += f32::from_bits(s.to_bits() & m);
            }
        }
        merge_channel(g, flat, plane, c, images);
    }
}

/// Channel `c` of every image of the chunk into the plane's phases.
#[inline(always)] // into each of multiversion!'s copies
fn split_channel(g: &Geometry, flat: &Flat, images: &[f32], c: usize, plane: &mut [f32]) {
    let (px, len, run) = (g.pixels(), g.h * g.w, flat.run(g));
    for j in 0..flat.images {
        let channel = &images[j * g.big_len() + c * len..][..len];
        split_phases(g, channel, &mut plane[flat.lead..], run, j * px);
    }
}

/// The inverse of `split_channel`.
#[inline(always)]
fn merge_channel(g: &Geometry, flat: &Flat, plane: &[f32], c: usize, images: &mut [f32]) {
    let (px, len, run) = (g.pixels(), g.h * g.w, flat.run(g));
    for j in 0..flat.images {
        let channel = &mut images[j * g.big_len() + c * len..][..len];
        merge_phases(g, &plane[flat.lead..], run, j * px, channel);
    }
}

/// dst [m, n] (row stride `ld_dst`) = lhs · rhs, or += when `accumulate`;
/// lhs and rhs given by (row stride, column stride). One thread: the
/// parallelism is across chunks.
#[allow(clippy::too_many_arguments)]
fn gemm(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    ld_dst: usize,
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(dst.len() > last(m, n, ld_dst, 1));
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ld_dst..][..n].fill(0.0);
            }
        }
        return;
    }
    assert!(lhs.len() > last(m, k, lhs_rs, lhs_cs));
    assert!(rhs.len() > last(k, n, rhs_rs, rhs_cs));
    // SAFETY: the asserts above keep every index the strides reach inside
    // the slices; dst is borrowed mutably and does not alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld_dst as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Copy images [C, P] of a chunk into one matrix [C, nb·P] (or back).
fn gather(images: &[f32], channels: usize, pixels: usize, out: &mut [f32]) {
    let nb = images.len() / (channels * pixels);
    for b in 0..nb {
        for c in 0..channels {
            out[c * nb * pixels + b * pixels..][..pixels]
                .copy_from_slice(&images[(b * channels + c) * pixels..][..pixels]);
        }
    }
}

fn scatter(matrix: &[f32], channels: usize, pixels: usize, images: &mut [f32]) {
    let nb = images.len() / (channels * pixels);
    for b in 0..nb {
        for c in 0..channels {
            images[(b * channels + c) * pixels..][..pixels]
                .copy_from_slice(&matrix[c * nb * pixels + b * pixels..][..pixels]);
        }
    }
}

/// Add `bias[c]` to every pixel of channel c of every image.
fn add_bias(images: &mut [f32], bias: &[f32], pixels: usize) {
    for (plane, b) in images.chunks_mut(pixels).zip(bias.iter().cycle()) {
        plane.iter_mut().for_each(|v| *v += b);
    }
}

/// im2col of a chunk of images into `cols` [C_big·kh·kw, ld]; or, for a
/// single image of a 1×1 convolution, the image itself.
fn columns<'a>(g: &Geometry, walk: &Walk, images: &'a [f32], cols: &'a mut [f32]) -> &'a [f32] {
    let n = images.len() / g.big_len();
    let (px, ld) = (g.pixels(), n * g.pixels());
    if g.pointwise() {
        if n == 1 {
            return images;
        }
        gather(images, g.c_big, px, cols);
    } else {
        match walk {
            Walk::Flat(flats) => im2col_flat(g, Flat::of(flats, n), images, cols),
            Walk::Taps(taps) => {
                for (b, img) in images.chunks(g.big_len()).enumerate() {
                    im2col_taps(g, taps, img, cols, ld, b * px);
                }
            }
        }
    }
    cols
}

/// small = Wm · im2col(big) (+ bias per small channel).
fn small_from_big(g: &Geometry, big: &[f32], wm: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let len = g.batch * g.small_len();
    if let Some(plan) = regions::Plan::new(g, wm) {
        let nb = regions::chunk_images(g);
        return par_zeroed(len, nb * g.small_len(), |i, out| {
            let n = out.len() / g.small_len();
            let inp = &big[i * nb * g.big_len()..][..n * g.big_len()];
            regions::chunk(g, &plan, inp, out, bias)
        });
    }
    let (rows, px, nb, walk) = (g.rows(), g.pixels(), g.chunk(), walk(g));
    par_zeroed(len, nb * g.small_len(), |i, out| {
        let n = out.len() / g.small_len();
        let inp = &big[i * nb * g.big_len()..][..n * g.big_len()];
        let ld = n * px;
        // One image: the GEMM writes it in place, no gather or scatter.
        let product = if n == 1 { 0 } else { g.c_small * ld };
        with_scratch(rows * ld, product, |cols, prod| {
            let cols = columns(g, &walk, inp, cols);
            let shape = [g.c_small, ld, rows];
            if n == 1 {
                gemm(shape, out, ld, false, wm, [rows, 1], cols, [ld, 1]);
            } else {
                gemm(shape, prod, ld, false, wm, [rows, 1], cols, [ld, 1]);
                scatter(prod, g.c_small, px, out);
            }
        });
        if let Some(bias) = bias {
            add_bias(out, bias, px);
        }
    })
}

/// big = col2im(Wmᵀ · small) (+ bias per big channel).
fn big_from_small(g: &Geometry, small: &[f32], wm: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (rows, px, nb, walk) = (g.rows(), g.pixels(), g.chunk(), walk(g));
    par_zeroed(g.batch * g.big_len(), nb * g.big_len(), |i, out| {
        let n = out.len() / g.big_len();
        let inp = &small[i * nb * g.small_len()..][..n * g.small_len()];
        let ld = n * px;
        let gathered_len = if n == 1 { 0 } else { g.c_small * ld };
        with_scratch(rows * ld, gathered_len, |cols, gathered| {
            // One image is already [C_small, P].
            let rhs: &[f32] = if n == 1 {
                inp
            } else {
                gather(inp, g.c_small, px, gathered);
                gathered
            };
            let shape = [rows, ld, g.c_small];
            if g.pointwise() && n == 1 {
                gemm(shape, out, ld, false, wm, [1, rows], rhs, [ld, 1]);
                return;
            }
            gemm(shape, cols, ld, false, wm, [1, rows], rhs, [ld, 1]);
            if g.pointwise() {
                scatter(cols, g.c_big, px, out);
            } else {
                match &walk {
                    Walk::Flat(flats) => col2im_flat(g, Flat::of(flats, n), cols, out),
                    Walk::Taps(taps) => {
                        for (b, img) in out.chunks_mut(g.big_len()).enumerate() {
                            col2im_taps(g, taps, cols, ld, b * px, img);
                        }
                    }
                }
            }
        });
        if let Some(bias) = bias {
            add_bias(out, bias, g.h * g.w);
        }
    })
}

/// dWm = Σ over images of small · im2col(big)ᵀ, as [C_small, C_big·kh·kw].
///
/// Each chunk computes dWmᵀ = im2col(big) · smallᵀ [C_big·kh·kw, C_small]:
/// asked for dWm itself, the gemm crate transposes the problem and packs
/// the large column matrix into panels with a scalar, strided copy (15% of
/// a 2-thread U-Net step); this way round it packs only `small`, 9× smaller
/// for a 3×3 kernel, and reads the columns in place.
fn weight_grad(g: &Geometry, small: &[f32], big: &[f32]) -> Vec<f32> {
    let (rows, px, nb, walk) = (g.rows(), g.pixels(), g.chunk(), walk(g));
    let partials: Vec<Vec<f32>> = small
        .par_chunks(nb * g.small_len())
        .zip(big.par_chunks(nb * g.big_len()))
        .map(|(s, b)| {
            let n = s.len() / g.small_len();
            let ld = n * px;
            let mut dw = vec![0.0; g.c_small * rows];
            let gathered_len = if n == 1 { 0 } else { g.c_small * ld };
            with_scratch(rows * ld, gathered_len, |cols, gathered| {
                let cols = columns(g, &walk, b, cols);
                let small_m: &[f32] = if n == 1 {
                    s
                } else {
                    gather(s, g.c_small, px, gathered);
                    gathered
                };
                let (shape, ldw) = ([rows, g.c_small, ld], g.c_small);
                gemm(shape, &mut dw, ldw, false, cols, [ld, 1], small_m, [1, ld]);
            });
            dw
        })
        .collect();
    let mut total_t = vec![0.0; rows * g.c_small];
    for p in &partials {
        total_t.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    // [C_big·kh·kw, C_small] → [C_small, C_big·kh·kw].
    let mut total = vec![0.0; g.c_small * rows];
    for (r, row) in total_t.chunks_exact(g.c_small).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            total[c * rows + r] = v;
        }
    }
    total
}

/// A stride-1 convolution's input gradient, big = col2im(Wmᵀ · small), as
/// a plain convolution of the output gradient: the kernel flipped, its
/// channel axes swapped, padding k − 1 − p. im2col's gathers then replace
/// col2im's scatter-adds, and the GEMM writes [C_big, P] instead of kh·kw
/// times that: U-Net training +6% at batch 64, +12% at 256 (one thread).
/// (A transposed convolution's stride-1 forward is the same product; there
/// it measured no faster, and keeps col2im.) None for strides, padding
/// wider than the kernel's reach, and 1×1 (no col2im anyway).
fn as_convolution(g: &Geometry, weight: &[f32]) -> Option<(Geometry, Vec<f32>)> {
    let [kh, kw] = g.k;
    if g.stride != [1, 1] || g.pad[0] >= kh || g.pad[1] >= kw || g.pointwise() {
        return None;
    }
    // Sizes that a transposed convolution's padding_out made disagree.
    if g.h + 2 * g.pad[0] != g.oh + kh - 1 || g.w + 2 * g.pad[1] != g.ow + kw - 1 {
        return None;
    }
    // weight [C_small, C_big, kh, kw] → flipped [C_big, C_small, kh, kw].
    let mut flipped = vec![0.0; weight.len()];
    for co in 0..g.c_small {
        for ci in 0..g.c_big {
            for i in 0..kh {
                for j in 0..kw {
                    flipped[((ci * g.c_small + co) * kh + kh - 1 - i) * kw + kw - 1 - j] =
                        weight[((co * g.c_big + ci) * kh + i) * kw + j];
                }
            }
        }
    }
    let g2 = Geometry {
        batch: g.batch,
        c_big: g.c_small,
        h: g.oh,
        w: g.ow,
        c_small: g.c_big,
        oh: g.h,
        ow: g.w,
        k: g.k,
        stride: [1, 1],
        pad: [kh - 1 - g.pad[0], kw - 1 - g.pad[1]],
    };
    Some((g2, flipped))
}

/// Sum of `grad` [N, C, P] per channel, image by image in order: one task
/// per channel, so the sums do not depend on the thread count. (Serial,
/// this was the largest part of a two-thread training step that left the
/// second core idle.)
fn bias_grad(grad: &[f32], channels: usize, pixels: usize) -> Vec<f32> {
    let images = grad.len() / (channels * pixels).max(1);
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let mut sum = 0.0f64;
            for b in 0..images {
                let plane = &grad[(b * channels + c) * pixels..][..pixels];
                sum += plane.iter().map(|&v| v as f64).sum::<f64>();
            }
            sum as f32
        })
        .collect()
}

/// The convolution (plain or transposed) with its bias.
pub fn forward(
    x: FloatTensor<Flex>,
    weight: FloatTensor<Flex>,
    bias: FloatTensor<Flex>,
    spec: ConvSpec,
) -> FloatTensor<Flex> {
    let g = geometry(&x.shape(), &weight.shape(), &spec);
    let (x, weight, bias) = (values(&x), values(&weight), values(&bias));
    if spec.transposed {
        let (xs, ws, bs) = (slice(&x), slice(&weight), slice(&bias));
        let out = subpixel::forward(&g, xs, ws, bs)
            .unwrap_or_else(|| big_from_small(&g, xs, ws, Some(bs)));
        tensor(out, [g.batch, g.c_big, g.h, g.w])
    } else {
        let out = small_from_big(&g, slice(&x), slice(&weight), Some(slice(&bias)));
        tensor(out, [g.batch, g.c_small, g.oh, g.ow])
    }
}

/// Gradients for x, weight and bias, each only where `wanted`.
pub fn backward(
    [x, weight, bias]: [FloatTensor<Flex>; 3],
    spec: ConvSpec,
    [want_x, want_w, want_b]: [bool; 3],
    grad: FloatTensor<Flex>,
) -> [Option<FloatTensor<Flex>>; 3] {
    let (x_shape, w_shape) = (x.shape(), weight.shape());
    let g = geometry(&x_shape, &w_shape, &spec);
    let dims = |s: &Shape| [s[0], s[1], s[2], s[3]];
    let (x, weight, grad) = (values(&x), values(&weight), values(&grad));
    let (xs, ws, gs) = (slice(&x), slice(&weight), slice(&grad));
    // Which side of the plain-convolution view x and the gradient are on.
    let (small, big) = if spec.transposed { (xs, gs) } else { (gs, xs) };
    let grad_x = want_x.then(|| {
        let dx = if spec.transposed {
            small_from_big(&g, gs, ws, None)
        } else if let Some((g2, w2)) = as_convolution(&g, ws) {
            small_from_big(&g2, gs, &w2, None)
        } else {
            big_from_small(&g, gs, ws, None)
        };
        tensor(dx, dims(&x_shape))
    });
    let grad_w = want_w.then(|| tensor(weight_grad(&g, small, big), dims(&w_shape)));
    let grad_b = want_b.then(|| {
        let (channels, pixels) = if spec.transposed {
            (g.c_big, g.h * g.w)
        } else {
            (g.c_small, g.pixels())
        };
        let sums = bias_grad(gs, channels, pixels);
        Flex::float_from_data(TensorData::new(sums, bias.shape()), &Default::default())
    });
    [grad_x, grad_w, grad_b]
}
