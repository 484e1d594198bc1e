//! torch-sys links libtorch but emits no rpath, so binaries built with the
//! `tch` feature would need LD_LIBRARY_PATH to start. torch-sys exports its
//! library directory (as DEP_TCH_LIBTORCH_LIB, through its `links` key):
//! bake it into every binary and test binary of this package.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
