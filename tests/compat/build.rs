fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("percpu_0_4.x");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-tests=-no-pie");
    println!("cargo:rustc-link-arg-tests=-T{}", script.display());
}
