//! Matrix transposes for the region convolutions, 8×8 blocks at a time.
//!
//! A scalar transpose moves one value per load and store, with the index
//! arithmetic around it; the AVX2 block moves 64 values with 8 loads, 24
//! shuffles and 8 stores. A transpose only moves values, so every path
//! gives the same result.

/// `dst[c·ld_dst + r] = src[r·ld_src + c]` for `r < rows`, `c < cols`.
pub(super) fn transpose(
    src: &[f32],
    ld_src: usize,
    [rows, cols]: [usize; 2],
    dst: &mut [f32],
    ld_dst: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(src.len() >= (rows - 1) * ld_src + cols && ld_src >= cols);
    assert!(dst.len() >= (cols - 1) * ld_dst + rows && ld_dst >= rows);
    let (full_rows, full_cols) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        for r in (0..full_rows).step_by(8) {
            for c in (0..full_cols).step_by(8) {
                // SAFETY: AVX2 is present (checked above); the block's rows
                // r..r+8 and columns c..c+8 are inside `src`, and its
                // columns and rows (swapped) inside `dst`, by the asserts.
                unsafe {
                    block_avx2(
                        src.as_ptr().add(r * ld_src + c),
                        ld_src,
                        dst.as_mut_ptr().add(c * ld_dst + r),
                        ld_dst,
                    )
                };
            }
        }
        scalar(src, ld_src, full_rows..rows, 0..cols, dst, ld_dst);
        scalar(src, ld_src, 0..full_rows, full_cols..cols, dst, ld_dst);
        return;
    }
    scalar(src, ld_src, 0..rows, 0..cols, dst, ld_dst);
}

/// The transpose of the block `rows` × `cols`, one value at a time.
fn scalar(
    src: &[f32],
    ld_src: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    dst: &mut [f32],
    ld_dst: usize,
) {
    for r in rows {
        for c in cols.clone() {
            dst[c * ld_dst + r] = src[r * ld_src + c];
        }
    }
}

/// One 8×8 block: rows of `src` become columns of `dst`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn block_avx2(src: *const f32, ld_src: usize, dst: *mut f32, ld_dst: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller keeps all 8 rows of 8 values in bounds.
    unsafe {
        let row = |i: usize| _mm256_loadu_ps(src.add(i * ld_src));
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
        // Pairs of rows interleaved, then pairs of pairs: each 128-bit
        // lane then holds a 4×4 block transposed.
        let (a0, a1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (a2, a3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (a4, a5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (a6, a7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        let b0 = _mm256_shuffle_ps::<0x44>(a0, a2);
        let b1 = _mm256_shuffle_ps::<0xEE>(a0, a2);
        let b2 = _mm256_shuffle_ps::<0x44>(a1, a3);
        let b3 = _mm256_shuffle_ps::<0xEE>(a1, a3);
        let b4 = _mm256_shuffle_ps::<0x44>(a4, a6);
        let b5 = _mm256_shuffle_ps::<0xEE>(a4, a6);
        let b6 = _mm256_shuffle_ps::<0x44>(a5, a7);
        let b7 = _mm256_shuffle_ps::<0xEE>(a5, a7);
        // Low lanes of rows 0-3 with low lanes of rows 4-7: columns 0-3;
        // the high lanes: columns 4-7.
        let out = |i: usize, v: __m256| _mm256_storeu_ps(dst.add(i * ld_dst), v);
        out(0, _mm256_permute2f128_ps::<0x20>(b0, b4));
        out(1, _mm256_permute2f128_ps::<0x20>(b1, b5));
        out(2, _mm256_permute2f128_ps::<0x20>(b2, b6));
        out(3, _mm256_permute2f128_ps::<0x20>(b3, b7));
        out(4, _mm256_permute2f128_ps::<0x31>(b0, b4));
        out(5, _mm256_permute2f128_ps::<0x31>(b1, b5));
        out(6, _mm256_permute2f128_ps::<0x31>(b2, b6));
        out(7, _mm256_permute2f128_ps::<0x31>(b3, b7));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_any_shape_with_strides() {
        for (rows, cols) in [(1, 1), (8, 8), (16, 24), (19, 13), (5, 40), (33, 4)] {
            let (ld_src, ld_dst) = (cols + 3, rows + 5);
            let src: Vec<f32> = (0..rows * ld_src).map(|i| i as f32).collect();
            let mut dst = vec![-1.0; cols * ld_dst];
            transpose(&src, ld_src, [rows, cols], &mut dst, ld_dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(dst[c * ld_dst + r], src[r * ld_src + c], "{rows}×{cols}");
                }
            }
            // Padding between rows of dst is left alone.
            for c in 0..cols {
                assert!(dst[c * ld_dst + rows..][..5].iter().all(|&v| v == -1.0));
            }
        }
    }
}
