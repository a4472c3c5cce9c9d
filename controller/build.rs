//! Generates the topology gRPC server and client from `proto/topology.proto`, and the
//! client of netapi's state feed from `../netapi/proto/netapi.proto` (the contract between
//! the two rooms). Needs `protoc`: Debian `protobuf-compiler`, which `labs/setup-host.sh`
//! installs; `PROTOC` overrides.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/topology.proto");
    println!("cargo:rerun-if-changed=../netapi/proto/netapi.proto");
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(&["proto/topology.proto"], &["proto"])?;
    tonic_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_protos(&["../netapi/proto/netapi.proto"], &["../netapi/proto"])?;
    Ok(())
}
