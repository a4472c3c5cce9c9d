//! `tenet-compute`: the compute service (`api`) and the hypervisor agent (`agent`).

use clap::{Parser, Subcommand};

/// tenet's compute service.
#[derive(Debug, Parser)]
#[command(name = "tenet-compute", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the Nova v2.1 and Glance v2 subsets (and the agents' internal endpoints).
    Api(tenet_compute::api::ApiConfig),
    /// Run the agent of one hypervisor host: report capacity, build servers, plug ports.
    Agent(tenet_compute::agent::AgentConfig),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenet-compute: starting tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Api(c) => tenet_compute::api::run(c).await,
            Command::Agent(c) => tenet_compute::agent::run(c).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenet-compute: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
