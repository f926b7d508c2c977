//! [`Controller`]: one node's handle on the metadata quorum.
//!
//! On a voter it runs the Raft node (log, state machine, tonic server for other voters
//! and for brokers) and, while it is the Raft leader, keeps broker leases and fences
//! brokers whose lease lapsed. On a broker-only node it follows the committed metadata
//! through the voters' `Watch` stream. Either way the rest of the node sees the same API:
//! the current image, a subscription to it, `submit`, broker registration with
//! heartbeats, and the quorum's state.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::type_config::async_runtime::{Instant as _, WatchReceiver as _};
use openraft::{ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::command::{Applied, Command};
use crate::error::{ControllerError, Rejection};
use crate::image::MetadataImage;
use crate::leases::Leases;
use crate::quorum::{QuorumInfo, VoterInfo};
use crate::raft::log_store::LogStore;
use crate::raft::network::Network;
use crate::raft::state_machine::{Published, StateMachine};
use crate::raft::{membership, Node, Raft};
use crate::rpc::pb::controller_client::ControllerClient;
use crate::rpc::{self, pb};
use crate::tls::ControllerTls;

/// How long [`Controller::submit`] keeps looking for a leader before giving up.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one RPC to another voter may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts while no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How a node takes part in the metadata quorum.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// This node's id (`node.id`).
    pub node_id: i32,
    /// Directory of the Raft log and metadata snapshots (used by voters only).
    pub dir: PathBuf,
    /// The seed voters: node id → controller address (`host:port`). Negative ids stand for
    /// bootstrap servers (`controller.quorum.bootstrap.servers`), asked only who leads.
    pub voters: BTreeMap<i32, String>,
    /// Where this node's controller listens; required when `node_id` is a voter.
    pub listen: Option<SocketAddr>,
    /// Raft heartbeat interval. Default 100 ms.
    pub raft_heartbeat_interval: Duration,
    /// Raft election timeout range. Default 300–600 ms (with 100 ms heartbeats, a dead leader is replaced in about a second).
    pub election_timeout: (Duration, Duration),
    /// How often a broker renews its lease. Default 250 ms.
    pub broker_heartbeat_interval: Duration,
    /// A broker silent for this long is fenced. Default 1 s (four missed heartbeats), so
    /// that a dead broker's partitions have new leaders within about 1.2 s.
    pub broker_session_timeout: Duration,
    /// Snapshot the image after this many Raft log entries; older entries are purged.
    /// Default 1,000.
    pub snapshot_every: u64,
    /// Mutual TLS for the controller port, served and used towards voters. Default none.
    pub tls: Option<ControllerTls>,
    /// Serve the controller port without TLS on an address other than loopback
    /// (`controller.allow.plaintext`). Default false: such a start is refused.
    pub allow_plaintext: bool,
    /// A controller with no place in `voters` (KIP-853's observer): it runs the Raft node,
    /// asks the leader to add it as a learner so that it receives the metadata log, and can
    /// then be made a voter with AddRaftVoter. `voters` only locates the quorum then.
    /// Default false.
    pub observer: bool,
}

impl ControllerOptions {
    /// Options with the defaults for everything but identity, storage and voters.
    pub fn new(
        node_id: i32,
        dir: PathBuf,
        voters: BTreeMap<i32, String>,
        listen: Option<SocketAddr>,
    ) -> ControllerOptions {
        ControllerOptions {
            node_id,
            dir,
            voters,
            listen,
            raft_heartbeat_interval: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
            broker_heartbeat_interval: Duration::from_millis(250),
            broker_session_timeout: Duration::from_millis(1000),
            snapshot_every: 1000,
            tls: None,
            allow_plaintext: false,
            observer: false,
        }
    }

    /// Whether this node is one of the seed voters.
    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }

    /// Whether this node runs a Raft node: a seed voter or an observer.
    pub fn runs_raft(&self) -> bool {
        self.is_voter() || self.observer
    }

    /// The controller address this node gives the quorum: its `voters` entry, else its
    /// listen address.
    fn own_address(&self) -> Option<String> {
        self.voters
            .get(&self.node_id)
            .cloned()
            .or_else(|| self.listen.map(|l| l.to_string()))
    }
}

/// Voters and learners with their nodes, and whether the configuration is joint.
type Members = (Vec<(u64, Node)>, Vec<(u64, Node)>, bool);

/// A change of the quorum's membership (KIP-853).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VoterChange {
    /// AddRaftVoter: the node becomes a learner, catches up, then a voter.
    Add {
        node_id: i32,
        directory_id: Uuid,
        address: String,
        timeout: Duration,
    },
    /// RemoveRaftVoter.
    Remove { node_id: i32, directory_id: Uuid },
    /// UpdateRaftVoter: a voter's address and directory id.
    Update {
        node_id: i32,
        directory_id: Uuid,
        address: String,
    },
    /// An observer asking to receive the log as a learner.
    Join {
        node_id: i32,
        directory_id: Uuid,
        address: String,
    },
}

impl VoterChange {
    fn to_pb(&self) -> pb::VoterChangeRequest {
        use pb::voter_change_request::Kind;
        let (kind, node_id, directory_id, address, timeout) = match self {
            VoterChange::Add {
                node_id,
                directory_id,
                address,
                timeout,
            } => (Kind::Add, node_id, directory_id, address.as_str(), *timeout),
            VoterChange::Remove {
                node_id,
                directory_id,
            } => (Kind::Remove, node_id, directory_id, "", Duration::ZERO),
            VoterChange::Update {
                node_id,
                directory_id,
                address,
            } => (
                Kind::Update,
                node_id,
                directory_id,
                address.as_str(),
                Duration::ZERO,
            ),
            VoterChange::Join {
                node_id,
                directory_id,
                address,
            } => (
                Kind::Join,
                node_id,
                directory_id,
                address.as_str(),
                Duration::ZERO,
            ),
        };
        pb::VoterChangeRequest {
            kind: kind as i32,
            node_id: *node_id,
            directory_id: directory_id.to_string(),
            address: address.to_owned(),
            timeout_ms: timeout.as_millis() as u64,
        }
    }

    /// Decodes a request from another node; `Err` names what is malformed.
    pub(crate) fn from_pb(r: pb::VoterChangeRequest) -> Result<VoterChange, String> {
        use pb::voter_change_request::Kind;
        let directory_id: Uuid = r
            .directory_id
            .parse()
            .map_err(|_| format!("bad directory id '{}'", r.directory_id))?;
        let (node_id, address) = (r.node_id, r.address);
        Ok(
            match Kind::try_from(r.kind).map_err(|_| format!("bad kind {}", r.kind))? {
                Kind::Add => VoterChange::Add {
                    node_id,
                    directory_id,
                    address,
                    timeout: Duration::from_millis(r.timeout_ms),
                },
                Kind::Remove => VoterChange::Remove {
                    node_id,
                    directory_id,
                },
                Kind::Update => VoterChange::Update {
                    node_id,
                    directory_id,
                    address,
                },
                Kind::Join => VoterChange::Join {
                    node_id,
                    directory_id,
                    address,
                },
            },
        )
    }
}

/// Whether `address` is `host:port` with a usable port.
fn valid_address(address: &str) -> bool {
    address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// This node's metadata directory id: read from `dir/directory.id`, or made and written
/// there on first start (Kafka keeps it in `meta.properties` as `directory.id`).
fn load_directory_id(dir: &std::path::Path) -> std::io::Result<Uuid> {
    let path = dir.join("directory.id");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(crate::raft::invalid_data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            let id = Uuid::new_v4();
            let tmp = dir.join("directory.id.tmp");
            {
                use std::io::Write as _;
                let mut file = std::fs::File::create(&tmp)?;
                file.write_all(id.to_string().as_bytes())?;
                file.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// One voter's Raft state (Kafka's `kafka.server:type=raft-metrics`). Offsets are one past
/// the Raft log index they name, 0 when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStatus {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown` (`current-state`).
    pub state: &'static str,
    /// The Raft term (`current-epoch`).
    pub term: u64,
    /// The leader this voter follows (`current-leader`).
    pub leader_id: Option<i32>,
    /// One past the last entry of the local log (`log-end-offset`).
    pub log_end_offset: u64,
    /// One past the last committed entry (`high-watermark`).
    pub high_watermark: u64,
    /// One past the last entry applied to the metadata image.
    pub applied: u64,
    /// One past the last entry the latest snapshot covers.
    pub snapshot: u64,
}

/// Parses Kafka-style voters, `1@host:port,2@host:port`.
pub fn parse_voters(text: &str) -> Result<BTreeMap<i32, String>, String> {
    let mut voters = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, address) = part
            .split_once('@')
            .ok_or_else(|| format!("voter '{part}' is not ID@HOST:PORT"))?;
        let id: i32 = id
            .parse()
            .map_err(|_| format!("voter '{part}' has a bad node id"))?;
        if id < 0 {
            return Err(format!("voter '{part}' has a negative node id"));
        }
        let (_, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("voter '{part}' has no port"))?;
        port.parse::<u16>()
            .map_err(|_| format!("voter '{part}' has a bad port"))?;
        if voters.insert(id, address.to_owned()).is_some() {
            return Err(format!("voter {id} is listed twice"));
        }
    }
    if voters.is_empty() {
        return Err("no voters".into());
    }
    Ok(voters)
}

/// A broker's registration: what it advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// Advertised Kafka host.
    pub host: String,
    /// Advertised Kafka port.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Every advertised listener; `host`/`port` is the inter-broker one among them.
    pub listeners: Vec<crate::ListenerEndpoint>,
}

/// Why one submission attempt on one voter did not produce an outcome.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The command is invalid.
    Rejected(Rejection),
    /// This voter is not the leader; the hint says who is, when known.
    NotLeader(pb::NotLeader),
    /// The voter could not be reached or failed.
    Unavailable(String),
}

struct Voter {
    raft: Raft,
    leases: Mutex<Leases>,
    /// Held by the leader while it carries out one membership change: KIP-853 allows one
    /// at a time.
    changing: tokio::sync::Mutex<()>,
}

struct Inner {
    options: ControllerOptions,
    /// This node's metadata directory id (nil on broker-only nodes).
    directory_id: Uuid,
    /// Controller addresses learned from `NotLeader` hints, by node id.
    learned: Mutex<HashMap<i32, String>>,
    published: Arc<Published>,
    voter: Option<Voter>,
    /// The leader as last learned from a `NotLeader` hint (broker-only nodes).
    leader_hint: Mutex<Option<i32>>,
    clients: Mutex<HashMap<i32, ControllerClient<Channel>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The task renewing this node's broker lease, while it runs.
    broker_lease: Mutex<Option<JoinHandle<()>>>,
    stopping: watch::Sender<bool>,
    /// Set once this process registered its broker (the image then holds every command
    /// committed before start-up).
    registered: watch::Sender<bool>,
}

/// One node's handle on the metadata quorum. Cheap to clone.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.inner.options.node_id)
            .field("voter", &self.inner.voter.is_some())
            .finish()
    }
}

impl Controller {
    /// Starts this node's part of the quorum: as a voter, opens the Raft log and snapshot
    /// in `options.dir`, binds the controller listener and joins (or, on first start,
    /// forms) the quorum; otherwise starts following the voters' metadata. Returns once
    /// the node is running, not once a leader is elected.
    ///
    /// Errors: [`ControllerError::Io`] when storage cannot be opened or the listener not
    /// bound; [`ControllerError::Config`] for inconsistent options, and for a voter whose
    /// listen address is not loopback without TLS (unless `allow_plaintext`): anyone
    /// reaching an open controller port could rewrite the cluster's metadata.
    pub async fn start(options: ControllerOptions) -> Result<Controller, ControllerError> {
        let (stopping, _) = watch::channel(false);
        let voter_listen = match (options.runs_raft(), options.listen) {
            (true, Some(listen))
                if !listen.ip().is_loopback()
                    && options.tls.is_none()
                    && !options.allow_plaintext =>
            {
                return Err(ControllerError::Config(format!(
                    "the controller port would serve {listen} without TLS: anyone reaching it \
                     could register brokers, submit metadata commands and forge Raft messages. \
                     Map the controller listener to SSL (listener.security.protocol.map=\
                     CONTROLLER:SSL with listener.name.controller.ssl.keystore.location and \
                     listener.name.controller.ssl.truststore.location), bind a loopback \
                     address, or set controller.allow.plaintext=true on a trusted network"
                )))
            }
            (true, Some(listen)) => Some(listen),
            (true, None) => {
                return Err(ControllerError::Config(
                    "a controller needs a controller listen address".into(),
                ))
            }
            (false, _) => None,
        };
        let mut directory_id = Uuid::nil();
        let (published, voter, listener) = match voter_listen {
            Some(listen) => {
                let io = |source| ControllerError::Io {
                    path: options.dir.clone(),
                    source,
                };
                let log = LogStore::open(&options.dir).map_err(io)?;
                directory_id = load_directory_id(&options.dir).map_err(io)?;
                let state_machine = StateMachine::open(&options.dir).map_err(io)?;
                let published = state_machine.published();
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|source| ControllerError::Io {
                        path: PathBuf::from(listen.to_string()),
                        source,
                    })?;
                let config = raft_config(&options)?;
                let network = Network {
                    tls: options.tls.as_ref().map(|tls| Arc::clone(&tls.client)),
                };
                let raft = Raft::new(
                    options.node_id as u64,
                    Arc::new(config),
                    network,
                    log,
                    state_machine,
                )
                .await
                .map_err(|e| ControllerError::Raft(e.to_string()))?;
                let voter = Voter {
                    raft,
                    leases: Mutex::new(Leases::default()),
                    changing: tokio::sync::Mutex::new(()),
                };
                (published, Some(voter), Some(listener))
            }
            None => (Arc::new(Published::new(MetadataImage::new())), None, None),
        };
        let controller = Controller {
            inner: Arc::new(Inner {
                options,
                directory_id,
                learned: Mutex::new(HashMap::new()),
                published,
                voter,
                leader_hint: Mutex::new(None),
                clients: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
                broker_lease: Mutex::new(None),
                stopping,
                registered: watch::channel(false).0,
            }),
        };
        if let (Some(voter), Some(listener)) = (&controller.inner.voter, listener) {
            let initialized = voter
                .raft
                .is_initialized()
                .await
                .map_err(|e| ControllerError::Raft(e.to_string()))?;
            if !initialized && controller.inner.options.is_voter() {
                // Every seed voter proposes the same initial membership; whichever is first
                // wins, the others' proposals are refused as already initialized. Once
                // formed, the membership lives in the Raft log: `voters` is not read again.
                let members = membership(
                    &controller.voters(),
                    (controller.inner.options.node_id, directory_id),
                );
                if let Err(error) = voter.raft.initialize(members).await {
                    tracing::debug!(%error, "metadata quorum already initialized");
                }
            }
            controller.spawn_server(listener);
            controller.spawn_lease_keeper();
            controller.spawn_membership_keeper();
        } else {
            controller.spawn_follower();
        }
        tracing::info!(
            node_id = controller.inner.options.node_id,
            voter = controller.inner.voter.is_some(),
            observer = controller.inner.options.observer,
            %directory_id,
            tls = controller.inner.options.tls.is_some(),
            voters = ?controller.inner.options.voters,
            "controller started"
        );
        Ok(controller)
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.inner.options.node_id
    }

    /// The seed voters this node was started with (`--voters`), by node id: the quorum's
    /// first membership, not necessarily its current one (see [`Controller::quorum`]).
    /// Bootstrap servers (negative pseudo ids in the options) are not among them.
    pub fn voters(&self) -> BTreeMap<i32, String> {
        self.inner
            .options
            .voters
            .iter()
            .filter(|(id, _)| **id >= 0)
            .map(|(id, a)| (*id, a.clone()))
            .collect()
    }

    /// This node's metadata directory id (KIP-853's voter key; nil on broker-only nodes).
    pub fn directory_id(&self) -> Uuid {
        self.inner.directory_id
    }

    /// The Raft membership as this node last saw it: voters and learners with their nodes,
    /// and whether a joint configuration (a change under way) is in force.
    fn membership(&self) -> Option<Members> {
        let voter = self.inner.voter.as_ref()?;
        let metrics = voter.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        let node = |id: u64| membership.get_node(&id).cloned().unwrap_or_default();
        let voters: Vec<(u64, Node)> = membership.voter_ids().map(|id| (id, node(id))).collect();
        let learners: Vec<(u64, Node)> =
            membership.learner_ids().map(|id| (id, node(id))).collect();
        let joint = membership.get_joint_config().len() > 1;
        Some((voters, learners, joint))
    }

    /// The controller address of node `id`: from the Raft membership, the seed voters, or a
    /// leader hint.
    fn address_of(&self, id: i32) -> Option<String> {
        if let Some(voter) = &self.inner.voter {
            let metrics = voter.raft.metrics();
            let m = metrics.borrow_watched();
            if let Some(node) = m.membership_config.membership().get_node(&(id as u64)) {
                return Some(node.addr.clone());
            }
        }
        self.inner
            .options
            .voters
            .get(&id)
            .or(self.inner.learned.lock().get(&id))
            .cloned()
    }

    /// Remembers the leader named by a `NotLeader` hint.
    fn learn_leader(&self, hint: &pb::NotLeader) {
        *self.inner.leader_hint.lock() = hint.leader_id;
        if let Some(id) = hint.leader_id {
            if !hint.leader_address.is_empty() {
                let mut learned = self.inner.learned.lock();
                if learned.get(&id) != Some(&hint.leader_address) {
                    learned.insert(id, hint.leader_address.clone());
                    self.inner.clients.lock().remove(&id);
                }
            }
        }
    }

    /// The current metadata image as this node knows it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.published.image()
    }

    /// A receiver that holds the current image and sees every later one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.published.subscribe()
    }

    pub(crate) fn published(&self) -> Arc<Published> {
        Arc::clone(&self.inner.published)
    }

    /// The node id of the quorum's leader, as far as this node knows.
    pub fn leader_id(&self) -> Option<i32> {
        match &self.inner.voter {
            Some(voter) => voter
                .raft
                .metrics()
                .borrow_watched()
                .current_leader
                .map(|id| id as i32),
            None => *self.inner.leader_hint.lock(),
        }
    }

    /// Validates and commits `command` through the quorum's leader (forwarding when this
    /// node is not the leader), then waits until this node's image includes it.
    ///
    /// Errors: [`ControllerError::Rejected`] for an invalid command (nothing changed);
    /// [`ControllerError::Unavailable`] when no leader accepted it within 10 s (it may
    /// still have been committed, as with any timed-out request).
    pub async fn submit(&self, command: Command) -> Result<Applied, ControllerError> {
        let deadline = Instant::now() + SUBMIT_TIMEOUT;
        let (applied, index) = self
            .through_leader(
                deadline,
                || self.submit_here(command.clone()),
                |id| self.submit_to(id, &command),
            )
            .await?;
        self.wait_for_index(index, deadline).await;
        Ok(applied)
    }

    /// Runs one request on the quorum's leader: `here` when this voter is the leader as
    /// far as it knows, else `at(leader)`. A `NotLeader` answer teaches the leader and an
    /// unreachable one is forgotten; either is retried after a pause until `deadline`.
    ///
    /// Errors: [`ControllerError::Rejected`] at once for a rejection;
    /// [`ControllerError::Unavailable`] with the last problem seen once `deadline` passes.
    async fn through_leader<T, Here, HereFuture, At, AtFuture>(
        &self,
        deadline: Instant,
        here: Here,
        at: At,
    ) -> Result<T, ControllerError>
    where
        Here: Fn() -> HereFuture,
        HereFuture: Future<Output = Result<T, Attempt>>,
        At: Fn(i32) -> AtFuture,
        AtFuture: Future<Output = Result<T, Attempt>>,
    {
        let mut last_problem = String::from("no metadata leader known");
        loop {
            let attempt = match self.route() {
                Some(id) if id == self.node_id() && self.inner.voter.is_some() => here().await,
                Some(id) => at(id).await,
                None => Err(Attempt::Unavailable(last_problem.clone())),
            };
            match attempt {
                Ok(done) => return Ok(done),
                Err(Attempt::Rejected(rejection)) => return Err(rejection.into()),
                Err(Attempt::NotLeader(hint)) => {
                    self.learn_leader(&hint);
                    last_problem = "the metadata leader changed".into();
                }
                Err(Attempt::Unavailable(reason)) => {
                    self.forget_leader();
                    last_problem = reason;
                }
            }
            if Instant::now() >= deadline {
                return Err(ControllerError::Unavailable(last_problem));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Where to send the next write: the known leader, or (broker-only, none known) the
    /// next voter in turn.
    fn route(&self) -> Option<i32> {
        if let Some(leader) = self.leader_id() {
            return Some(leader);
        }
        // A voter waits for an election; an observer not yet a learner asks the seeds.
        if self.inner.voter.is_some() && !self.inner.options.observer {
            return None;
        }
        let voters: Vec<i32> = self.inner.options.voters.keys().copied().collect();
        let pick = voters[rand_index(voters.len())];
        Some(pick)
    }

    fn forget_leader(&self) {
        *self.inner.leader_hint.lock() = None;
    }

    /// Waits (until `deadline`) for this node's image to reach `index`.
    async fn wait_for_index(&self, index: u64, deadline: Instant) {
        let mut images = self.subscribe();
        let reached = images.wait_for(|image| image.applied_index() >= index);
        let _ = tokio::time::timeout_at(deadline.into(), reached).await;
    }

    /// One submission on this voter's Raft (no forwarding).
    pub(crate) async fn submit_here(&self, command: Command) -> Result<(Applied, u64), Attempt> {
        let Some(voter) = &self.inner.voter else {
            return Err(Attempt::NotLeader(pb::NotLeader {
                leader_id: None,
                leader_address: String::new(),
            }));
        };
        match voter.raft.client_write(command).await {
            Ok(response) => response.data.map_err(Attempt::Rejected),
            Err(error) => match error.forward_to_leader() {
                Some(forward) => {
                    let leader_id = forward.leader_id.map(|id| id as i32);
                    Err(Attempt::NotLeader(pb::NotLeader {
                        leader_id,
                        leader_address: forward
                            .leader_node
                            .as_ref()
                            .map(|n| n.addr.clone())
                            .unwrap_or_default(),
                    }))
                }
                None => Err(Attempt::Unavailable(error.to_string())),
            },
        }
    }

    fn client(&self, id: i32) -> Result<ControllerClient<Channel>, Attempt> {
        let mut clients = self.inner.clients.lock();
        if let Some(client) = clients.get(&id) {
            return Ok(client.clone());
        }
        let address = self
            .address_of(id)
            .ok_or_else(|| Attempt::Unavailable(format!("node {id} is not a voter")))?;
        let tls = self.inner.options.tls.as_ref().map(|tls| &tls.client);
        let channel = rpc::lazy_channel(&address, tls).map_err(Attempt::Unavailable)?;
        let client = ControllerClient::new(channel);
        clients.insert(id, client.clone());
        Ok(client)
    }

    async fn submit_to(&self, id: i32, command: &Command) -> Result<(Applied, u64), Attempt> {
        let mut client = self.client(id)?;
        let command_json =
            serde_json::to_vec(command).map_err(|e| Attempt::Unavailable(e.to_string()))?;
        let reply = tokio::time::timeout(
            RPC_TIMEOUT,
            client.submit(pb::SubmitRequest { command_json }),
        )
        .await
        .map_err(|_| Attempt::Unavailable(format!("voter {id} did not answer in time")))?
        .map_err(|status| Attempt::Unavailable(format!("voter {id}: {}", status.message())))?;
        decode_submit_reply(reply.into_inner())
    }

    /// Renews `broker`'s lease if this voter leads the quorum.
    pub(crate) fn renew_lease(&self, broker: i32) {
        if let Some(voter) = &self.inner.voter {
            voter.leases.lock().renew(broker, Instant::now());
        }
    }

    /// A heartbeat of `broker` arriving at this voter: `Ok(fenced)` when this voter leads
    /// (the lease is renewed), else the leader hint.
    pub(crate) fn heartbeat_here(&self, broker: i32) -> Result<bool, pb::NotLeader> {
        let leading = self.inner.voter.as_ref().is_some_and(|v| {
            let metrics = v.raft.metrics();
            let m = metrics.borrow_watched();
            m.state == ServerState::Leader
        });
        if !leading {
            let leader_id = self.leader_id();
            return Err(pb::NotLeader {
                leader_id,
                leader_address: leader_id
                    .and_then(|id| self.address_of(id))
                    .unwrap_or_default(),
            });
        }
        self.renew_lease(broker);
        Ok(self.image().broker(broker).is_none_or(|b| b.fenced))
    }

    /// Resolves once this process has registered its broker: the registration was
    /// committed after everything committed before start-up, and `submit` returned only
    /// once the local image held it, so the image is caught up.
    pub async fn wait_registered(&self) {
        let mut registered = self.inner.registered.subscribe();
        let _ = registered.wait_for(|r| *r).await;
    }

    /// Registers this node as a broker and keeps its lease alive until shutdown:
    /// registration is retried until a leader accepts it, heartbeats follow every
    /// `broker_heartbeat_interval`, and a broker found fenced registers again.
    pub fn start_broker_lease(&self, registration: BrokerRegistration) {
        let controller = self.clone();
        let mut stopping = self.inner.stopping.subscribe();
        let task = tokio::spawn(async move {
            let interval = controller.inner.options.broker_heartbeat_interval;
            let mut registered = false;
            loop {
                if !registered {
                    registered = controller.register(&registration).await;
                } else {
                    if let Some(true) = controller.heartbeat().await {
                        tracing::warn!("this broker is fenced; registering again");
                        registered = false;
                        continue;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopping.changed() => return,
                }
            }
        });
        if let Some(previous) = self.inner.broker_lease.lock().replace(task) {
            previous.abort();
        }
    }

    /// Stops renewing this node's broker lease (a broker shutting down fences itself and
    /// must not register again meanwhile).
    pub fn stop_broker_lease(&self) {
        if let Some(task) = self.inner.broker_lease.lock().take() {
            task.abort();
        }
    }

    async fn register(&self, registration: &BrokerRegistration) -> bool {
        let command = Command::RegisterBroker {
            node_id: self.node_id(),
            host: registration.host.clone(),
            port: registration.port,
            rack: registration.rack.clone(),
            listeners: registration.listeners.clone(),
        };
        match self.submit(command).await {
            Ok(_) => {
                // A registration is a heartbeat, here as through the RPC: the lease of a
                // broker the leader saw before this restart may otherwise run out before
                // the first heartbeat.
                self.renew_lease(self.node_id());
                tracing::info!(node_id = self.node_id(), "broker registered");
                self.inner.registered.send_replace(true);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "broker registration failed; retrying");
                false
            }
        }
    }

    /// One heartbeat to the leader: `Some(fenced)` on an answer, `None` when no leader
    /// answered (the next heartbeat retries).
    async fn heartbeat(&self) -> Option<bool> {
        let node_id = self.node_id();
        let leader = self.route()?;
        if leader == node_id && self.inner.voter.is_some() {
            return self.heartbeat_here(node_id).ok();
        }
        let mut client = self.client(leader).ok()?;
        let request = pb::HeartbeatRequest {
            node_id,
            applied_index: self.image().applied_index(),
        };
        let reply = tokio::time::timeout(RPC_TIMEOUT, client.heartbeat(request))
            .await
            .ok()
            .and_then(Result::ok);
        match reply.and_then(|r| r.into_inner().outcome) {
            Some(pb::heartbeat_reply::Outcome::Fenced(fenced)) => Some(fenced),
            Some(pb::heartbeat_reply::Outcome::NotLeader(hint)) => {
                self.learn_leader(&hint);
                None
            }
            None => {
                self.forget_leader();
                None
            }
        }
    }

    /// This voter's Raft state for the metrics endpoint (`None` on a broker-only node).
    pub fn raft_status(&self) -> Option<RaftStatus> {
        let voter = self.inner.voter.as_ref()?;
        let metrics = voter.raft.metrics();
        let m = metrics.borrow_watched();
        let next = |id: Option<u64>| id.map_or(0, |i| i + 1);
        Some(RaftStatus {
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            term: m.current_term,
            leader_id: m.current_leader.map(|id| id as i32),
            log_end_offset: next(m.last_log_index),
            high_watermark: next(
                m.cluster_committed
                    .as_ref()
                    .or(m.local_committed.as_ref())
                    .map(|c| c.index()),
            ),
            applied: next(m.last_applied.as_ref().map(|c| c.index())),
            snapshot: next(m.snapshot.as_ref().map(|c| c.index())),
        })
    }

    /// The quorum's state as this voter sees it (`None` on a broker-only node).
    pub(crate) fn local_quorum(&self) -> Option<QuorumInfo> {
        let voter = self.inner.voter.as_ref()?;
        let metrics = voter.raft.metrics().borrow_watched().clone();
        let leading = metrics.state == ServerState::Leader;
        let membership = metrics.membership_config.membership();
        let describe = |key: u64| {
            let node = membership.get_node(&key).cloned().unwrap_or_default();
            let (log_end_offset, last_contact_ms_ago) = if key == metrics.id {
                (metrics.last_log_index.map(|i| i + 1), Some(0))
            } else if leading {
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&key).cloned().flatten())
                    .map(|l| l.index() + 1);
                let contact = metrics
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(&key).cloned().flatten())
                    .map(|at| at.elapsed().as_millis() as u64);
                (matched, contact)
            } else {
                (None, None)
            };
            VoterInfo {
                node_id: key as i32,
                address: node.addr,
                log_end_offset,
                last_contact_ms_ago,
                directory_id: node.directory_id,
            }
        };
        let voters = membership.voter_ids().map(describe).collect();
        let observers = membership.learner_ids().map(describe).collect();
        Some(QuorumInfo {
            leader_id: metrics.current_leader.map(|id| id as i32),
            term: metrics.current_term,
            high_watermark: metrics
                .cluster_committed
                .or(metrics.local_committed)
                .map_or(0, |c| c.index() + 1),
            voters,
            observers,
        })
    }

    /// The quorum's state: from this node when it is a voter, otherwise from the leader
    /// (or any voter that answers).
    pub async fn quorum(&self) -> Result<QuorumInfo, ControllerError> {
        let local = self.local_quorum();
        let leader = self.leader_id();
        if let Some(quorum) = &local {
            // Only the leader knows every voter's progress; a follower asks it first.
            if leader.is_none_or(|id| id == self.node_id()) {
                return Ok(quorum.clone());
            }
        }
        let mut candidates: Vec<i32> = leader.into_iter().collect();
        if local.is_none() {
            candidates.extend(self.inner.options.voters.keys().copied());
        }
        let mut last = String::from("no voter answered");
        for id in candidates {
            let Ok(mut client) = self.client(id) else {
                continue;
            };
            match tokio::time::timeout(
                RPC_TIMEOUT,
                client.describe_quorum(pb::DescribeQuorumRequest {}),
            )
            .await
            {
                Ok(Ok(reply)) => return Ok(rpc::quorum_from_pb(reply.into_inner())),
                Ok(Err(status)) => last = status.message().to_owned(),
                Err(_) => last = format!("voter {id} did not answer in time"),
            }
        }
        local.ok_or(ControllerError::Unavailable(last))
    }

    /// AddRaftVoter (KIP-853): makes `node_id` a learner with its controller `address`,
    /// waits up to `timeout` for it to catch up with the log, then makes it a voter.
    ///
    /// Errors ([`ControllerError::Rejected`]): `DuplicateVoter` when it already votes,
    /// `InvalidVoterChange` for a nil directory id or an unusable address,
    /// `VoterChangeTimedOut` while another change is under way or when it did not catch
    /// up; [`ControllerError::Unavailable`] when no leader answered.
    pub async fn add_voter(
        &self,
        node_id: i32,
        directory_id: Uuid,
        address: String,
        timeout: Duration,
    ) -> Result<(), ControllerError> {
        let change = VoterChange::Add {
            node_id,
            directory_id,
            address,
            timeout,
        };
        self.change_voters(change, timeout + SUBMIT_TIMEOUT).await
    }

    /// RemoveRaftVoter (KIP-853): removes the voter `node_id` whose directory id is
    /// `directory_id` (any, when the quorum does not know its directory id yet).
    ///
    /// Errors ([`ControllerError::Rejected`]): `VoterNotFound`, `InvalidVoterChange` for the
    /// last voter, `VoterChangeTimedOut` while another change is under way.
    pub async fn remove_voter(
        &self,
        node_id: i32,
        directory_id: Uuid,
    ) -> Result<(), ControllerError> {
        let change = VoterChange::Remove {
            node_id,
            directory_id,
        };
        self.change_voters(change, SUBMIT_TIMEOUT).await
    }

    /// UpdateRaftVoter (KIP-853): sets the voter's controller address and directory id.
    /// Voters send it for themselves on their own; errors as for [`Controller::remove_voter`].
    pub async fn update_voter(
        &self,
        node_id: i32,
        directory_id: Uuid,
        address: String,
    ) -> Result<(), ControllerError> {
        let change = VoterChange::Update {
            node_id,
            directory_id,
            address,
        };
        self.change_voters(change, SUBMIT_TIMEOUT).await
    }

    /// Carries out `change` on the leader, following leader hints for up to `limit`.
    async fn change_voters(
        &self,
        change: VoterChange,
        limit: Duration,
    ) -> Result<(), ControllerError> {
        self.through_leader(
            Instant::now() + limit,
            || self.change_voters_here(change.clone()),
            |id| self.change_voters_at(id, &change, limit),
        )
        .await
    }

    async fn change_voters_at(
        &self,
        id: i32,
        change: &VoterChange,
        limit: Duration,
    ) -> Result<(), Attempt> {
        use pb::voter_change_reply::Outcome;
        let mut client = self.client(id)?;
        let reply = tokio::time::timeout(limit + RPC_TIMEOUT, client.change_voters(change.to_pb()))
            .await
            .map_err(|_| Attempt::Unavailable(format!("voter {id} did not answer in time")))?
            .map_err(|status| Attempt::Unavailable(format!("voter {id}: {}", status.message())))?;
        match reply.into_inner().outcome {
            Some(Outcome::Done(_)) => Ok(()),
            Some(Outcome::RejectionJson(json)) => Err(Attempt::Rejected(
                serde_json::from_slice(&json)
                    .map_err(|e| Attempt::Unavailable(format!("bad reply: {e}")))?,
            )),
            Some(Outcome::NotLeader(hint)) => Err(Attempt::NotLeader(hint)),
            None => Err(Attempt::Unavailable("empty reply".into())),
        }
    }

    /// One membership change on this node's Raft, which must lead (no forwarding). Only one
    /// runs at a time; a second one is refused as Kafka refuses it.
    pub(crate) async fn change_voters_here(&self, change: VoterChange) -> Result<(), Attempt> {
        use std::collections::BTreeSet;
        let Some(voter) = &self.inner.voter else {
            return Err(Attempt::NotLeader(pb::NotLeader {
                leader_id: None,
                leader_address: String::new(),
            }));
        };
        let leading = voter.raft.metrics().borrow_watched().state == ServerState::Leader;
        if !leading {
            let leader_id = self.leader_id();
            return Err(Attempt::NotLeader(pb::NotLeader {
                leader_id,
                leader_address: leader_id
                    .and_then(|id| self.address_of(id))
                    .unwrap_or_default(),
            }));
        }
        let in_progress = || {
            Attempt::Rejected(Rejection::VoterChangeTimedOut(
                "There is already a voters change operation pending; retry later".into(),
            ))
        };
        let Ok(_changing) = voter.changing.try_lock() else {
            return Err(in_progress());
        };
        let Some((voters, learners, joint)) = self.membership() else {
            return Err(Attempt::Unavailable("no Raft node".into()));
        };
        if joint {
            return Err(in_progress());
        }
        let find = |list: &[(u64, Node)], id: i32| {
            list.iter()
                .find(|(k, _)| *k == id as u64)
                .map(|(_, node)| node.clone())
        };
        let bad_address = |address: &str| {
            Attempt::Rejected(Rejection::InvalidVoterChange(format!(
                "The request didn't include a usable controller endpoint (HOST:PORT): '{address}'"
            )))
        };
        // The voter as recorded, when `directory_id` matches it (or none is recorded yet).
        let matching_voter = |node_id: i32, directory_id: Uuid| {
            find(&voters, node_id)
                .filter(|node| node.directory_id.is_none_or(|d| d == directory_id))
                .ok_or(Attempt::Rejected(Rejection::VoterNotFound {
                    node_id,
                    directory_id,
                }))
        };
        let raft = &voter.raft;
        match change {
            VoterChange::Join {
                node_id,
                directory_id,
                address,
            } => {
                if find(&voters, node_id).is_some() || find(&learners, node_id).is_some() {
                    return Ok(());
                }
                if !valid_address(&address) {
                    return Err(bad_address(&address));
                }
                let node = Node {
                    addr: address,
                    directory_id: Some(directory_id),
                };
                tracing::info!(node_id, %node, "adding an observer as a Raft learner");
                raft.add_learner(node_id as u64, node, false)
                    .await
                    .map_err(membership_error)?;
            }
            VoterChange::Add {
                node_id,
                directory_id,
                address,
                timeout,
            } => {
                if find(&voters, node_id).is_some() {
                    return Err(Attempt::Rejected(Rejection::DuplicateVoter(node_id)));
                }
                if directory_id.is_nil() {
                    return Err(Attempt::Rejected(Rejection::InvalidVoterChange(
                        "Add voter request didn't include a valid voter (directory id)".into(),
                    )));
                }
                if !valid_address(&address) {
                    return Err(bad_address(&address));
                }
                // As Kafka's leader: only an observer that fetches the log with this
                // directory id can catch up, anything else times out.
                match find(&learners, node_id).map(|n| n.directory_id) {
                    None => {
                        return Err(Attempt::Rejected(Rejection::VoterChangeTimedOut(format!(
                            "Node {node_id} is not an observer of the metadata log, so it \
                             cannot catch up"
                        ))))
                    }
                    Some(Some(known)) if known != directory_id => {
                        return Err(Attempt::Rejected(Rejection::VoterChangeTimedOut(format!(
                            "Node {node_id} follows the log with directory id {known}, not \
                             {directory_id}"
                        ))));
                    }
                    Some(_) => {}
                }
                let node = Node {
                    addr: address,
                    directory_id: Some(directory_id),
                };
                let timeout = if timeout.is_zero() {
                    SUBMIT_TIMEOUT
                } else {
                    timeout
                };
                tracing::info!(node_id, %node, "adding a voter: catching it up as a learner");
                match tokio::time::timeout(timeout, raft.add_learner(node_id as u64, node, true))
                    .await
                {
                    Ok(result) => {
                        result.map_err(membership_error)?;
                    }
                    Err(_) => {
                        return Err(Attempt::Rejected(Rejection::VoterChangeTimedOut(format!(
                            "Node {node_id} did not catch up with the metadata log within \
                             {} ms",
                            timeout.as_millis()
                        ))))
                    }
                }
                raft.change_membership(
                    openraft::ChangeMembers::AddVoterIds(BTreeSet::from([node_id as u64])),
                    false,
                )
                .await
                .map_err(membership_error)?;
                tracing::info!(node_id, "voter added");
            }
            VoterChange::Remove {
                node_id,
                directory_id,
            } => {
                matching_voter(node_id, directory_id)?;
                if voters.len() == 1 {
                    return Err(Attempt::Rejected(Rejection::InvalidVoterChange(format!(
                        "Cannot remove voter {node_id}: it is the only voter"
                    ))));
                }
                // The removed voter stays a learner: as in Kafka it keeps following the log
                // as an observer, which its broker needs while it runs.
                raft.change_membership(
                    openraft::ChangeMembers::RemoveVoters(BTreeSet::from([node_id as u64])),
                    true,
                )
                .await
                .map_err(membership_error)?;
                tracing::info!(node_id, "voter removed");
            }
            VoterChange::Update {
                node_id,
                directory_id,
                address,
            } => {
                let current = matching_voter(node_id, directory_id)?;
                if !valid_address(&address) {
                    return Err(bad_address(&address));
                }
                let node = Node {
                    addr: address,
                    directory_id: Some(directory_id),
                };
                if current == node {
                    return Ok(());
                }
                tracing::info!(node_id, %node, "updating a voter");
                raft.change_membership(
                    openraft::ChangeMembers::SetNodes(BTreeMap::from([(node_id as u64, node)])),
                    false,
                )
                .await
                .map_err(membership_error)?;
            }
        }
        Ok(())
    }

    /// On every Raft node: keeps this node's own entry of the membership right. A voter
    /// whose entry lacks its directory id or has an old address sends UpdateRaftVoter; an
    /// observer not yet in the membership asks to join as a learner.
    fn spawn_membership_keeper(&self) {
        let controller = self.clone();
        let task = tokio::spawn(async move {
            let options = &controller.inner.options;
            let Some(address) = options.own_address() else {
                return;
            };
            let mine = Node {
                addr: address,
                directory_id: Some(controller.inner.directory_id),
            };
            let me = options.node_id;
            let mut ticker = tokio::time::interval(Duration::from_millis(500));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some((voters, learners, _)) = controller.membership() else {
                    return;
                };
                let recorded = voters.iter().find(|(id, _)| *id == me as u64);
                let change = match recorded {
                    Some((_, node))
                        if *node != mine
                            && node
                                .directory_id
                                .is_none_or(|d| Some(d) == mine.directory_id) =>
                    {
                        VoterChange::Update {
                            node_id: me,
                            directory_id: controller.inner.directory_id,
                            address: mine.addr.clone(),
                        }
                    }
                    None if options.observer
                        && !learners.iter().any(|(id, _)| *id == me as u64) =>
                    {
                        VoterChange::Join {
                            node_id: me,
                            directory_id: controller.inner.directory_id,
                            address: mine.addr.clone(),
                        }
                    }
                    _ => continue,
                };
                if controller.leader_id().is_none() && !options.observer {
                    continue;
                }
                if let Err(error) = controller
                    .change_voters(change, Duration::from_secs(2))
                    .await
                {
                    tracing::debug!(%error, "announcing this controller to the quorum failed");
                }
            }
        });
        self.inner.tasks.lock().push(task);
    }

    /// Stops background tasks and the Raft node. The log and snapshots stay on disk.
    pub async fn shutdown(&self) {
        self.inner.stopping.send_replace(true);
        self.stop_broker_lease();
        let tasks: Vec<JoinHandle<()>> = self.inner.tasks.lock().drain(..).collect();
        for task in tasks {
            task.abort();
        }
        if let Some(voter) = &self.inner.voter {
            if let Err(error) = voter.raft.shutdown().await {
                tracing::warn!(%error, "Raft shutdown failed");
            }
        }
    }

    fn spawn_server(&self, listener: tokio::net::TcpListener) {
        let Some(voter) = &self.inner.voter else {
            return;
        };
        let raft = rpc::pb::raft_server::RaftServer::new(rpc::RaftService {
            raft: voter.raft.clone(),
        })
        .max_decoding_message_size(256 << 20);
        let control = rpc::pb::controller_server::ControllerServer::new(rpc::ControllerService {
            controller: self.clone(),
        })
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(256 << 20);
        let mut stopping = self.inner.stopping.subscribe();
        let tls = self
            .inner
            .options
            .tls
            .as_ref()
            .map(|tls| Arc::clone(&tls.server));
        let task = tokio::spawn(async move {
            let router = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(raft)
                .add_service(control);
            let stop = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            let served = match tls {
                Some(config) => {
                    let incoming = crate::tls::incoming(listener, config);
                    router.serve_with_incoming_shutdown(incoming, stop).await
                }
                None => {
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                    router.serve_with_incoming_shutdown(incoming, stop).await
                }
            };
            if let Err(error) = served {
                tracing::error!(%error, "controller listener failed");
            }
        });
        self.inner.tasks.lock().push(task);
    }

    /// While this voter leads: fences every live broker whose lease lapsed.
    fn spawn_lease_keeper(&self) {
        let controller = self.clone();
        let task = tokio::spawn(async move {
            let Some(voter) = &controller.inner.voter else {
                return;
            };
            let session = controller.inner.options.broker_session_timeout;
            let election_min = controller.inner.options.election_timeout.0;
            let tick = Duration::from_millis(100);
            let mut ticker = tokio::time::interval(tick);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_tick = Instant::now();
            // The leader this voter followed last, and whether it leads itself now.
            let mut previous_leader: Option<i32> = None;
            let mut was_leading = false;
            loop {
                ticker.tick().await;
                let now = Instant::now();
                let stalled = now.duration_since(last_tick) > tick * 5;
                last_tick = now;
                let (leading, current) = {
                    let metrics = voter.raft.metrics();
                    let m = metrics.borrow_watched();
                    (
                        m.state == ServerState::Leader,
                        m.current_leader.map(|id| id as i32),
                    )
                };
                if !leading {
                    voter.leases.lock().clear();
                    previous_leader = current.or(previous_leader);
                    was_leading = false;
                    continue;
                }
                if !was_leading {
                    was_leading = true;
                    // This voter was elected because the previous leader went silent for
                    // at least an election timeout: its broker's session counts from then.
                    if let Some(old) = previous_leader.filter(|&id| id != controller.node_id()) {
                        let silent_since = now.checked_sub(election_min).unwrap_or(now);
                        voter.leases.lock().renew(old, silent_since);
                    }
                }
                if stalled {
                    // This process did not run for a while: heartbeats could not arrive.
                    voter.leases.lock().renew_all(now);
                }
                let image = controller.image();
                let live = image.live_brokers().map(|b| b.node_id);
                let expired = voter.leases.lock().expired(live, Instant::now(), session);
                for node_id in expired {
                    tracing::warn!(node_id, "broker lease expired; fencing it");
                    match controller
                        .submit_here(Command::FenceBroker { node_id })
                        .await
                    {
                        Ok(_) => voter.leases.lock().forget(node_id),
                        Err(error) => tracing::warn!(node_id, ?error, "fencing failed"),
                    }
                }
            }
        });
        self.inner.tasks.lock().push(task);
    }

    /// Broker-only nodes: follows the committed metadata from the voters.
    fn spawn_follower(&self) {
        let controller = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Some(id) = controller.route() else {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                };
                if let Err(reason) = controller.follow(id).await {
                    tracing::debug!(voter = id, %reason, "metadata watch ended; reconnecting");
                    controller.forget_leader();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        self.inner.tasks.lock().push(task);
    }

    async fn follow(&self, voter: i32) -> Result<(), String> {
        let mut client = self.client(voter).map_err(|e| format!("{e:?}"))?;
        let from = self.image().applied_index();
        let mut stream = client
            .watch(pb::WatchRequest { from_index: from })
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        while let Some(update) = stream.message().await.map_err(|s| s.message().to_owned())? {
            let published = &self.inner.published;
            match update.update {
                Some(pb::metadata_update::Update::ImageJson(json)) => {
                    let image: MetadataImage =
                        serde_json::from_slice(&json).map_err(|e| e.to_string())?;
                    published.reset(Arc::new(image));
                }
                Some(pb::metadata_update::Update::CommandJson(json)) => {
                    let command: Command =
                        serde_json::from_slice(&json).map_err(|e| e.to_string())?;
                    let mut image = MetadataImage::clone(&published.image());
                    if update.index != image.applied_index() + 1 {
                        return Err(format!(
                            "metadata gap: at {}, got {}",
                            image.applied_index(),
                            update.index
                        ));
                    }
                    image
                        .apply(&command)
                        .map_err(|r| format!("command {} refused: {r}", update.index))?;
                    published.publish(Arc::new(image), vec![(update.index, Arc::new(command))]);
                }
                None => {}
            }
        }
        Err("stream closed".into())
    }
}

/// What a failed openraft membership change means for the client.
fn membership_error(
    error: openraft::errors::RaftError<
        crate::raft::TypeConfig,
        openraft::errors::ClientWriteError<crate::raft::TypeConfig>,
    >,
) -> Attempt {
    use openraft::errors::{ChangeMembershipError, ClientWriteError};
    if let Some(forward) = error.forward_to_leader() {
        return Attempt::NotLeader(pb::NotLeader {
            leader_id: forward.leader_id.map(|id| id as i32),
            leader_address: forward
                .leader_node
                .as_ref()
                .map(|n| n.addr.clone())
                .unwrap_or_default(),
        });
    }
    match error.api_error() {
        Some(ClientWriteError::ChangeMembershipError(
            e @ (ChangeMembershipError::InProgress(_)
            | ChangeMembershipError::UncommittedLeaderLog(_)),
        )) => Attempt::Rejected(Rejection::VoterChangeTimedOut(e.to_string())),
        Some(ClientWriteError::ChangeMembershipError(e)) => {
            Attempt::Rejected(Rejection::InvalidVoterChange(e.to_string()))
        }
        _ => Attempt::Unavailable(error.to_string()),
    }
}

fn decode_submit_reply(reply: pb::SubmitReply) -> Result<(Applied, u64), Attempt> {
    use pb::submit_reply::Outcome;
    let undecodable = |e: serde_json::Error| Attempt::Unavailable(format!("bad reply: {e}"));
    match reply.outcome {
        Some(Outcome::AppliedJson(json)) => serde_json::from_slice(&json).map_err(undecodable),
        Some(Outcome::RejectionJson(json)) => Err(Attempt::Rejected(
            serde_json::from_slice(&json).map_err(undecodable)?,
        )),
        Some(Outcome::NotLeader(hint)) => Err(Attempt::NotLeader(hint)),
        None => Err(Attempt::Unavailable("empty reply".into())),
    }
}

/// A pseudo-random index below `len` (spreads broker-only nodes over voters).
fn rand_index(len: usize) -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    nanos % len.max(1)
}

fn raft_config(options: &ControllerOptions) -> Result<openraft::Config, ControllerError> {
    let ms = |d: Duration| d.as_millis() as u64;
    openraft::Config {
        cluster_name: "strata".into(),
        heartbeat_interval: ms(options.raft_heartbeat_interval),
        election_timeout_min: ms(options.election_timeout.0),
        election_timeout_max: ms(options.election_timeout.1),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every.max(1)),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ControllerError::Config(e.to_string()))
}
