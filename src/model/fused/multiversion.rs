//! `multiversion!`: a kernel compiled for AVX-512, AVX2 and the build's
//! baseline, picked at run time, so a default build (no target-cpu flags)
//! still runs wide vectors where the CPU has them.
//!
//! The AVX-512 copy exists only with the `avx512` feature (on by default,
//! with the GEMM's AVX-512 kernels): a build without it runs exactly what an
//! AVX2-only CPU runs, which is how that CPU's speed is measured here.

/// One element-wise kernel compiled three times: for AVX-512, for AVX2 and
/// for the build's baseline, chosen once per call by what the CPU has.
macro_rules! multiversion {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[cfg(feature = "avx512")]
                {
                    #[target_feature(enable = "avx512f")]
                    fn avx512($($arg: $ty),*) {
                        $body($($arg),*)
                    }
                    if std::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU has AVX-512F, checked just above.
                        return unsafe { avx512($($arg),*) };
                    }
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// The same for a body generic over `const FMA: bool`: the vector copies
/// run it with fused multiply-adds (`madd`), where the CPU has FMA too
/// (every AVX2 CPU but a few early VIA ones), the baseline without.
macro_rules! multiversion_fma {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[cfg(feature = "avx512")]
                {
                    #[target_feature(enable = "avx512f,fma")]
                    fn avx512($($arg: $ty),*) {
                        $body::<true>($($arg),*)
                    }
                    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                        // SAFETY: the CPU has AVX-512F and FMA, checked just above.
                        return unsafe { avx512($($arg),*) };
                    }
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

/// `a·b + c`, rounded once where `FMA` (only in `multiversion_fma!`'s
/// vector copies: elsewhere `mul_add` is a slow library call).
#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// The widest vector code the flex kernels run on this CPU with this build:
/// "avx512", "avx2" or "baseline" (the build's own target, e.g. SSE2 or NEON).
/// `latentlab bench` reports it so a measurement says what it measured.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(feature = "avx512")]
        if std::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "baseline"
}
