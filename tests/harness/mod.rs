//! A harness that runs real `strata serve` processes for black-box tests: start, stop
//! (SIGTERM), kill -9, pause (SIGSTOP), resume and restart, each waiting on readiness.
//!
//! The binary is `$STRATA_BIN`, else `target/release/strata`, else `target/debug/strata`.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub mod certs;
pub mod cluster;
pub mod http;
pub mod java;
pub mod netns;
pub mod raw;
pub mod replicas;
pub mod sasl;
pub mod tool;

/// How long a node may take to accept connections after it is started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a clean stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The strata binary under test.
pub fn strata_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STRATA_BIN") {
        return PathBuf::from(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    let release = root.join("target/release/strata");
    if release.exists() {
        return release;
    }
    root.join("target/debug/strata")
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port on `host` (a loopback address) that was free a moment ago and that this test
/// process has not handed out before.
///
/// The kernel may give a released ephemeral port to the next `bind(0)`, so two ports picked
/// for one node (its controller and an inter-broker listener) could otherwise be the same.
pub fn free_port_on(host: &str) -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<(String, u16)>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("binding an ephemeral port on {host}: {e}"));
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert((host.to_string(), port)) {
            return port;
        }
    }
}

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// `--node-id`.
    pub node_id: i32,
    /// Extra Kafka properties written to the `--config` file.
    pub properties: Vec<(String, String)>,
    /// The loopback address the node listens on (Kafka and controller).
    pub host: String,
    /// `--voters`; `None` makes the node a one-voter cluster of its own.
    pub voters: Option<String>,
    /// `--roles`; `None` for the default (broker and controller).
    pub roles: Option<String>,
    /// The controller port (when the node is a voter); `None` picks a free one.
    pub controller_port: Option<u16>,
    /// The Kafka port; `None` picks a free one.
    pub port: Option<u16>,
    /// The network namespace to run in (`ip netns exec`); `None` for this one.
    pub netns: Option<String>,
    /// `RLIMIT_NOFILE` (soft and hard) to run under (`prlimit`); `None` inherits this one's.
    pub open_files_limit: Option<u64>,
    /// Bytes of a tmpfs mounted as the data directory (a small disk that can fill up; the
    /// mount needs root, as the suite's install step does); `None`: the temp directory.
    pub data_dir_bytes: Option<u64>,
    /// Further `strata serve` flags.
    pub args: Vec<String>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            node_id: 1,
            properties: Vec::new(),
            host: "127.0.0.1".into(),
            voters: None,
            roles: None,
            controller_port: None,
            port: None,
            netns: None,
            open_files_limit: None,
            data_dir_bytes: None,
            args: Vec::new(),
        }
    }
}

impl NodeOptions {
    /// Adds a Kafka property.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Options for a node with a PLAINTEXT listener (its bootstrap) and a second listener,
    /// named after its `protocol` as Kafka names them, both on 127.0.0.1 at free ports; and
    /// the second listener's address.
    pub fn with_second_listener(protocol: &str) -> (NodeOptions, String) {
        let (port, second) = (free_port(), free_port());
        let options = NodeOptions {
            port: Some(port),
            ..NodeOptions::default()
        }
        .property(
            "listeners",
            &format!("PLAINTEXT://127.0.0.1:{port},{protocol}://127.0.0.1:{second}"),
        );
        (options, format!("127.0.0.1:{second}"))
    }
}

/// One `strata serve` process and its data directory.
#[derive(Debug)]
pub struct Node {
    child: Option<Child>,
    options: NodeOptions,
    port: u16,
    controller_port: u16,
    dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node on a fresh port and data directory and waits until it serves.
    pub fn start(options: NodeOptions) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir()
            .expect("temp dir");
        let port = options.port.unwrap_or_else(|| free_port_on(&options.host));
        let controller_port = options
            .controller_port
            .unwrap_or_else(|| free_port_on(&options.host));
        let mut node = Node {
            child: None,
            options,
            port,
            controller_port,
            dir,
        };
        if let Some(bytes) = node.options.data_dir_bytes {
            let data = node.data_dir();
            std::fs::create_dir_all(&data).expect("creating the data directory");
            let status = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
                .arg(&data)
                .status()
                .expect("running mount");
            assert!(
                status.success(),
                "mounting a tmpfs at {} failed (needs root)",
                data.display()
            );
        }
        node.spawn();
        node
    }

    /// Starts with default options.
    pub fn start_default() -> Node {
        Self::start(NodeOptions::default())
    }

    /// `HOST:PORT` of the Kafka listener.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.options.host, self.port)
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.options.node_id
    }

    /// The voters this node was started with.
    pub fn voters(&self) -> String {
        self.options.voters.clone().unwrap_or_else(|| {
            format!(
                "{}@{}:{}",
                self.options.node_id, self.options.host, self.controller_port
            )
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("strata.toml");
        let toml: String = self
            .options
            .properties
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
            .collect();
        std::fs::write(&config, toml).expect("writing the config file");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("strata.log"))
            .expect("log file");
        let mut command = match &self.options.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]);
                c
            }
            None => Command::new("env"),
        };
        if let Some(n) = self.options.open_files_limit {
            command.arg("prlimit").arg(format!("--nofile={n}:{n}"));
        }
        command.arg(strata_bin());
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--node-id")
            .arg(self.options.node_id.to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(self.bootstrap())
            .arg("--voters")
            .arg(self.voters())
            .args(
                self.options
                    .roles
                    .as_ref()
                    .map(|roles| ["--roles".to_owned(), roles.clone()])
                    .into_iter()
                    .flatten(),
            )
            .args(&self.options.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", strata_bin().display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr: SocketAddr = self.bootstrap().parse().expect("address");
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "strata exited during start-up with {status}:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "strata did not accept connections within {READY_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// The node's log output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("strata.log")).unwrap_or_default()
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.process_id() as i32)
    }

    /// The process id of the running node (wrappers such as `prlimit` exec it in place).
    pub fn process_id(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// The process's resident memory (`VmRSS`) in KiB.
    pub fn rss_kib(&self) -> u64 {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {path}"))
    }

    /// SIGTERM and wait for a clean exit; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let _ = kill(self.pid(), Signal::SIGTERM);
        let mut child = self.child.take().expect("node is running");
        loop {
            if let Some(status) = child.try_wait().expect("waiting on strata") {
                assert!(
                    status.success(),
                    "strata exited with {status} on SIGTERM:\n{}",
                    self.log()
                );
                return started.elapsed();
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                panic!(
                    "strata did not stop within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP.
    pub fn pause(&self) {
        kill(self.pid(), Signal::SIGSTOP).expect("SIGSTOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        kill(self.pid(), Signal::SIGCONT).expect("SIGCONT");
    }

    /// Starts the node again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped or killed node");
        self.spawn();
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- strata log ({}) ---\n{}", self.bootstrap(), self.log());
        }
        if self.options.data_dir_bytes.is_some() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.data_dir())
                .status();
        }
    }
}

/// Runs `f` on a fresh runtime, failing the test after `limit`.
pub fn run_bounded<F: std::future::Future<Output = ()>>(limit: Duration, f: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let finished = runtime.block_on(async { tokio::time::timeout(limit, f).await.is_ok() });
    if !finished {
        // A client call stuck in a blocking task must not keep the test from failing:
        // dropping the runtime would wait for it, so leave such threads behind.
        runtime.shutdown_background();
        panic!("test exceeded {limit:?}");
    }
}
