//! `ferry-bench`: Ferry's benchmarks, outside the production library and
//! binary. Each starts a Ferry of its own (embedded defaults, or the
//! PostgreSQL and Redis named) and prints a Markdown row for BENCHMARKS.md.
//! Build it in release mode beside `ferry` (idle-memory starts that binary):
//! `cargo build --release -p ferry -p ferry-bench`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Ferry's benchmarks (results go to standard output, logs to standard error).
#[derive(Debug, Parser)]
#[command(name = "ferry-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Overhead of a connector call (client, limiter, logging) against a
    /// bare reqwest call to the same simulator endpoint.
    Connector {
        /// Measured calls per side.
        #[arg(long, default_value_t = 4000)]
        calls: usize,
    },
    /// Signed webhook events accepted and stored per second, with latency.
    Ingest {
        /// Measured events.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[command(flatten)]
        backend: BenchBackend,
    },
    /// Webhook → map three fields → HTTP POST to a local sink: completed,
    /// fully recorded runs per second, and database bytes per run.
    PeerFlow {
        /// Measured events.
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[command(flatten)]
        backend: BenchBackend,
    },
    /// A Ferry with the peer flow installed, posting to an outside sink, for
    /// an outside load generator (`scripts/bench-peers` drives it): prints
    /// the webhook's URL and secret as JSON, answers `count` on standard
    /// input with the runs by status, stops on `quit`.
    ServePeerFlow {
        /// Where the flow posts (the sink every peer posts to).
        #[arg(long)]
        sink: String,
        #[command(flatten)]
        backend: BenchBackend,
    },
    /// The reference workflow end to end (contact created in the HubSpot
    /// simulator → outcome written back), per second.
    Reference {
        /// Contacts created.
        #[arg(long, default_value_t = 1_000)]
        contacts: usize,
        #[command(flatten)]
        backend: BenchBackend,
    },
    /// Resident memory of `ferry serve` at rest after start, and at rest
    /// again after a round of logins (half failed, half successful).
    IdleMemory {
        /// Logins performed between the two measurements.
        #[arg(long, default_value_t = 100)]
        logins: usize,
        /// Seconds the server is left alone before each measurement.
        #[arg(long, default_value_t = 8)]
        settle_secs: u64,
    },
    /// One evaluation of every alert rule over stored rollups (10 rules per
    /// workflow, hourly rollups for `days` days).
    Alerts {
        /// Workflows watched.
        #[arg(long, default_value_t = 1_000)]
        workflows: usize,
        /// Days of hourly rollups.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Steady evaluations measured after the first.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// A PostgreSQL server (a fresh database is created on it);
        /// default: embedded SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Latency of the runs page with a large history stored.
    RunsPage {
        /// Runs stored.
        #[arg(long, default_value_t = 1_000_000)]
        history: usize,
        /// Page requests measured.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        #[command(flatten)]
        backend: BenchBackend,
    },
}

/// Where a benchmark's Ferry keeps its data.
#[derive(Debug, clap::Args)]
struct BenchBackend {
    /// A PostgreSQL server (a fresh database is created on it), e.g.
    /// postgres://postgres@127.0.0.1:5432; default: embedded SQLite.
    #[arg(long)]
    postgres: Option<String>,
    /// Redis for the queue, e.g. redis://127.0.0.1:6379; default: embedded.
    #[arg(long)]
    redis: Option<String>,
}

impl BenchBackend {
    fn into_backend(self) -> ferry_bench::runs::Backend {
        ferry_bench::runs::Backend {
            postgres: self.postgres,
            redis: self.redis,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Connector { calls } => {
            let (ferry_side, bare) =
                ferry_bench::connector::connector_overhead(calls.max(100)).await?;
            println!(
                "connector call overhead, {calls} calls per side, sequential, HubSpot simulator GET /crm/v3/objects/contacts?limit=1"
            );
            println!("| path | p50 µs | p99 µs | mean µs |");
            println!("|---|---|---|---|");
            println!(
                "| Ferry connector (guarded client + limiter + logging) | {:.0} | {:.0} | {:.0} |",
                ferry_side.p50_us, ferry_side.p99_us, ferry_side.mean_us
            );
            println!(
                "| bare reqwest | {:.0} | {:.0} | {:.0} |",
                bare.p50_us, bare.p99_us, bare.mean_us
            );
            println!(
                "ratio (Ferry / bare): p50 {:.2}×, mean {:.2}×",
                ferry_side.p50_us / bare.p50_us,
                ferry_side.mean_us / bare.mean_us
            );
            Ok(())
        }
        Command::Ingest {
            events,
            concurrency,
            backend,
        } => {
            let r = ferry_bench::runs::ingest(&backend.into_backend(), events, concurrency).await?;
            println!("{r}");
            Ok(())
        }
        Command::PeerFlow {
            events,
            concurrency,
            backend,
        } => {
            let r =
                ferry_bench::runs::peer_flow(&backend.into_backend(), events, concurrency).await?;
            println!("{r}");
            Ok(())
        }
        Command::ServePeerFlow { sink, backend } => {
            ferry_bench::runs::serve_peer_flow(&backend.into_backend(), &sink).await
        }
        Command::Reference { contacts, backend } => {
            let r = ferry_bench::runs::reference(&backend.into_backend(), contacts).await?;
            println!("{r}");
            Ok(())
        }
        Command::RunsPage {
            history,
            requests,
            backend,
        } => {
            let r =
                ferry_bench::runs::runs_page(&backend.into_backend(), history, requests).await?;
            println!("{r}");
            Ok(())
        }
        Command::Alerts {
            workflows,
            days,
            rounds,
            postgres,
        } => {
            let r =
                ferry_bench::alerts::alerts(postgres.as_deref(), workflows, days, rounds).await?;
            println!("{r}");
            Ok(())
        }
        Command::IdleMemory {
            logins,
            settle_secs,
        } => {
            let r = ferry_bench::memory::idle_memory(
                logins,
                std::time::Duration::from_secs(settle_secs),
            )
            .await?;
            println!("{r}");
            Ok(())
        }
    }
}
