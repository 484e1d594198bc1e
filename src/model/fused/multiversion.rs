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
