//! The TCP connections a process holds open to a server, read from /proc: how the tests
//! and the benchmark see that the operator multiplexes everything over one connection to
//! the API server.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use kube::config::Kubeconfig;
use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

/// A free port on 127.0.0.1 for a server that must come back at the same address later (a
/// simulator stopped and started again, an admin server named in advance). It is picked
/// below the kernel's ephemeral range (`ip_local_port_range`), which `bind(…:0)` and every
/// outgoing connection draw from: with the e2e tests running side by side, a port freed by
/// `bind(…:0)` would otherwise be taken by another test's server or connection before it is
/// used again.
pub fn free_port() -> u16 {
    let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_low / 2);
    for _ in 0..1000 {
        let port = rand::random_range(low..ephemeral_low);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {low}..{ephemeral_low}");
}

/// Established TCP connections of process `pid` to `server`.
pub fn connections_to(pid: u32, server: SocketAddr) -> Result<usize, String> {
    let pid = i32::try_from(pid).map_err(|e| e.to_string())?;
    let process = Process::new(pid).map_err(|e| format!("process {pid}: {e}"))?;
    let sockets: HashSet<u64> = process
        .fd()
        .map_err(|e| format!("fds of {pid}: {e}"))?
        .filter_map(|fd| match fd.ok()?.target {
            FDTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect();
    let mut table = process.tcp().map_err(|e| format!("tcp of {pid}: {e}"))?;
    table.extend(process.tcp6().unwrap_or_default());
    let same = |a: SocketAddr| {
        a.port() == server.port() && a.ip().to_canonical() == server.ip().to_canonical()
    };
    Ok(table
        .iter()
        .filter(|e| {
            e.state == TcpState::Established && same(e.remote_address) && sockets.contains(&e.inode)
        })
        .count())
}

/// The address of the API server that `kubeconfig`'s current context names.
pub fn api_server(kubeconfig: &Path) -> SocketAddr {
    let kc = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let context = kc
        .contexts
        .iter()
        .find(|c| Some(&c.name) == kc.current_context.as_ref())
        .and_then(|c| c.context.as_ref())
        .expect("a current context");
    let server = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref()?.server.clone())
        .expect("the context's cluster has a server");
    let url = url::Url::parse(&server).expect("server URL");
    let host = url
        .host_str()
        .expect("server host")
        .trim_matches(['[', ']']);
    (host, url.port_or_known_default().expect("server port"))
        .to_socket_addrs()
        .expect("resolve the server")
        .next()
        .expect("the server has an address")
}
