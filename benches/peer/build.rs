//! Links the benchmark as `percpu` 0.4 requires on a Linux host, unless `sp-naive`: its `x86_64` accesses
//! name per-CPU statics by 32-bit absolute addresses (so a non-PIE executable) and it finds the
//! template through the symbols that `percpu_peer.x` defines.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=percpu_peer.x");
    if env::var_os("CARGO_FEATURE_SP_NAIVE").is_none() {
        let manifest_dir =
            env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let script = Path::new(&manifest_dir).join("percpu_peer.x");
        println!("cargo:rustc-link-arg-benches=-no-pie");
        println!("cargo:rustc-link-arg-benches=-T{}", script.display());
    }
}
