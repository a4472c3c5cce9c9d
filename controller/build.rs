//! Generates the topology gRPC server and client from `proto/topology.proto` (needs `protoc`:
//! Debian `protobuf-compiler`, which `labs/setup-host.sh` installs; `PROTOC` overrides).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/topology.proto");
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/topology.proto"], &["proto"])?;
    Ok(())
}
