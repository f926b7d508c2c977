//! A private network for a cluster, to cut nodes off it: each node runs in a network
//! namespace of its own, wired to a bridge in a switch namespace; the test process reaches
//! the nodes through one more veth pair from its own namespace. Cutting a node downs its
//! port on the bridge, so nothing reaches it and nothing leaves it. Everything is created
//! here and removed on drop; traffic goes only to addresses inside these namespaces.
//!
//! Needs `ip` (iproute2) and CAP_NET_ADMIN; [`Network::create`] returns `None` without them.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A switch and `nodes` node namespaces on `10.77.<subnet>.0/24`.
#[derive(Debug)]
pub struct Network {
    tag: String,
    subnet: u8,
    nodes: usize,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) {
    assert!(ip(args), "ip {args:?} failed");
}

impl Network {
    /// Builds the network, or `None` when this machine cannot create namespaces.
    pub fn create(nodes: usize) -> Option<Network> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{}", std::process::id() % 100_000, n);
        let subnet = ((std::process::id() + n * 37) % 200 + 20) as u8;
        let switch = format!("sw{tag}");
        if !ip(&["netns", "add", &switch]) {
            return None;
        }
        let net = Network { tag, subnet, nodes };
        let sw = net.switch();
        must(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &sw, "link", "set", "br0", "up"]);
        for i in 1..=nodes {
            let ns = net.namespace(i);
            let (inner, port) = (format!("v{i}x{}", net.tag), net.port(i));
            must(&["netns", "add", &ns]);
            must(&["link", "add", &inner, "type", "veth", "peer", "name", &port]);
            must(&["link", "set", &inner, "netns", &ns]);
            must(&["link", "set", &port, "netns", &sw]);
            must(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.node_ip(i)),
                "dev",
                &inner,
            ]);
            must(&["-n", &ns, "link", "set", &inner, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
            must(&["-n", &sw, "link", "set", &port, "master", "br0"]);
            must(&["-n", &sw, "link", "set", &port, "up"]);
        }
        let (host, host_port) = (net.host_link(), format!("hpx{}", net.tag));
        must(&[
            "link", "add", &host, "type", "veth", "peer", "name", &host_port,
        ]);
        must(&["link", "set", &host_port, "netns", &sw]);
        must(&["-n", &sw, "link", "set", &host_port, "master", "br0"]);
        must(&["-n", &sw, "link", "set", &host_port, "up"]);
        must(&[
            "addr",
            "add",
            &format!("10.77.{}.1/24", net.subnet),
            "dev",
            &host,
        ]);
        must(&["link", "set", &host, "up"]);
        Some(net)
    }

    fn switch(&self) -> String {
        format!("sw{}", self.tag)
    }

    fn host_link(&self) -> String {
        format!("hx{}", self.tag)
    }

    /// The bridge port of node `i`.
    fn port(&self, i: usize) -> String {
        format!("p{i}x{}", self.tag)
    }

    /// The namespace node `i` (1-based) runs in.
    pub fn namespace(&self, i: usize) -> String {
        format!("n{i}x{}", self.tag)
    }

    /// Node `i`'s address.
    pub fn node_ip(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.subnet, 10 + i)
    }

    /// Cuts node `i` off: nothing reaches it, nothing leaves it.
    pub fn cut(&self, i: usize) {
        must(&["-n", &self.switch(), "link", "set", &self.port(i), "down"]);
    }

    /// Connects node `i` again.
    pub fn heal(&self, i: usize) {
        must(&["-n", &self.switch(), "link", "set", &self.port(i), "up"]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        ip(&["link", "del", &self.host_link()]);
        for i in 1..=self.nodes {
            ip(&["netns", "del", &self.namespace(i)]);
        }
        ip(&["netns", "del", &self.switch()]);
    }
}
