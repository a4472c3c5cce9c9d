//! Generates the gRPC server and client code from `proto/netapi.proto` (needs `protoc`:
//! Debian `protobuf-compiler`, which `labs/setup-host.sh` installs; `PROTOC` overrides).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/netapi.proto");
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/netapi.proto"], &["proto"])?;
    Ok(())
}
