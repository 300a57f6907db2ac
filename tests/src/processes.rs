//! Ferry as separate processes: the built `ferry` binary, and worker
//! processes on a test app's database and queue.

use crate::TestApp;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The `ferry` binary built beside the test binary.
pub fn ferry_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    // target/<profile>/deps/e2e-… → target/<profile>/ferry
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("ferry"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "build the binary first: cargo build -p ferry --bin ferry (scripts/test does)"
    );
    bin
}

impl TestApp {
    /// Starts a `ferry worker` process on this app's database, queue and
    /// data directory, with `env` added; its log goes to `<log>.log` in the
    /// data directory.
    pub fn start_worker(&self, log: &str, env: &[(&str, &str)]) -> Child {
        self.start_process("worker", log, env)
    }

    /// Starts `ferry <command>` (`worker`, `serve`) on this app's
    /// database, queue and data directory, with `env` added (it wins over
    /// the app's own settings); its log goes to `<log>.log`.
    pub fn start_process(&self, command: &str, log: &str, env: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new(ferry_bin());
        cmd.arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FERRY_DATABASE_URL", &self.database_url)
            .env("FERRY_DATA_DIR", self.data_dir.path())
            .env("FERRY_BIND", self.address.trim_start_matches("http://"))
            .env("FERRY_PUBLIC_URL", &self.address)
            .env("FERRY_QUEUE_NAME", &self.queue_name)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.data_dir.path().join(format!("{log}.log")))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            );
        if let Some(redis) = &self.redis_url {
            cmd.env("FERRY_REDIS_URL", redis);
        }
        cmd.envs(env.iter().copied());
        cmd.spawn().expect("start a ferry process")
    }
}
