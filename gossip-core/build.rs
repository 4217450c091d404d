//! Compiles `proto/gossip.proto` with protox, so no system `protoc` is needed.
fn main() {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = proto_dir.join("gossip.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&proto_dir]).expect("proto/gossip.proto must compile");
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(fds)
        .expect("prost-build must generate the wire types");
}
