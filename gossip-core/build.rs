//! Compiles `proto/gossip.proto` with protox, so no system `protoc` is needed.
//!
//! The manifest directory is read when the build script runs, not baked in
//! when it is compiled (`env!`), so a checkout that moves or shares its target
//! directory with another checkout still finds its own schema.
fn main() {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("cargo sets CARGO_MANIFEST_DIR for build scripts");
    let proto_dir = std::path::Path::new(&manifest_dir).join("../proto");
    let file = proto_dir.join("gossip.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&proto_dir]).expect("proto/gossip.proto must compile");
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(fds)
        .expect("prost-build must generate the wire types");
}
