//! `multiversion!`: a kernel compiled for AVX-512, AVX2 and the build's
//! baseline, picked at run time, so a default build (no target-cpu flags)
//! still runs wide vectors where the CPU has them.
//!
//! The AVX-512 copy exists only with the `avx512` feature (on by default,
//! with the GEMM's AVX-512 kernels): a build without it runs exactly what an
//! AVX2-only CPU runs, which is how that CPU's speed is measured here.

/// One element-wise kernel compiled three times: for AVX-512, for AVX2 and
/// for the build's baseline, chosen once per call by what the CPU has.
///
/// `multiversion!(fma name, body, (args))` takes a body generic over
/// `const FMA: bool`: the vector copies run it with fused multiply-adds
/// (`madd`), where the CPU has FMA too (every AVX2 CPU but a few early VIA
/// ones), the baseline without.
macro_rules! multiversion {
    ($name:ident, $body:ident, $args:tt) => {
        multiversion!(@copies $name, $args,
            "avx512f", ["avx512f"], $body, "avx2", ["avx2"], $body, $body);
    };
    (fma $name:ident, $body:ident, $args:tt) => {
        multiversion!(@copies $name, $args,
            "avx512f,fma", ["avx512f", "fma"], $body::<true>,
            "avx2,fma", ["avx2", "fma"], $body::<true>, $body::<false>);
    };
    (@copies $name:ident, ($($arg:ident: $ty:ty),*),
        $wide:tt, [$($wide_has:tt),*], $wide_body:path,
        $avx2:tt, [$($avx2_has:tt),*], $avx2_body:path, $base_body:path) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[cfg(feature = "avx512")]
                {
                    #[target_feature(enable = $wide)]
                    fn avx512($($arg: $ty),*) {
                        $wide_body($($arg),*)
                    }
                    if $(std::is_x86_feature_detected!($wide_has))&&* {
                        // SAFETY: the CPU has these features, checked just above.
                        return unsafe { avx512($($arg),*) };
                    }
                }
                #[target_feature(enable = $avx2)]
                fn avx2($($arg: $ty),*) {
                    $avx2_body($($arg),*)
                }
                if $(std::is_x86_feature_detected!($avx2_has))&&* {
                    // SAFETY: the CPU has these features, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $base_body($($arg),*)
        }
    };
}

/// `a·b + c`, rounded once where `FMA` (only in `multiversion!(fma …)`'s
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
