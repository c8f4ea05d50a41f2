//! The network of a RUN: the host's, none (an empty namespace), or the build's private network:
//! one network namespace per build with outbound access through `pasta` (package `passt`, what
//! rootless podman uses), joined by every RUN of the build through its OCI spec.
//!
//! What keeps the host out of the private network:
//! - pasta runs with `-t none -u none -T none -U none`: its defaults (`auto`) would publish the
//!   namespace's listening ports on the host and, worse, the host's listening ports (loopback
//!   services included) on the namespace's loopback;
//! - `--no-map-gw`: connections to the gateway address are not turned into connections to the
//!   host's loopback;
//! - pasta connects to whatever address a RUN asks for, so the host's own addresses (every
//!   address of every host interface when the build starts, IPv6 link-local included) are made
//!   unreachable by `prohibit` policy rules in the namespace, which a RUN cannot remove (it has
//!   no `CAP_NET_ADMIN`);
//! - pasta also forwards packets a RUN writes straight onto its interface, routing rules or not,
//!   including to `127.0.0.1`: so RUNs on this network get no `CAP_NET_RAW` (as podman and
//!   buildah), and the namespace's `ping_group_range` lets ping use ICMP sockets instead (as
//!   docker sets it).
//!
//! Lifetime: the namespace is held by a descriptor of hush and one of pasta, and nothing else (no
//! bind mount in `/run/netns`); pasta runs in the foreground as hush's child with
//! `PR_SET_PDEATHSIG`, and is killed when the build ends. So when hush exits, is interrupted or is
//! killed with SIGKILL, pasta goes too and the namespace with it.

use std::ffi::CString;
use std::fs;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::IoContext;
use crate::{Error, Result};

/// Where a RUN's DNS queries go on the private network; pasta forwards them to the host's first
/// resolver (`--dns-forward`), loopback resolvers such as systemd-resolved's included.
pub const DNS_FORWARD: &str = "169.254.1.1";

/// `/etc/hosts` as BuildKit writes it for build containers.
pub const HOSTS: &str =
    "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// A RUN's `/etc/hosts`: [`HOSTS`], then each `--add-host` (`IP<TAB>NAME`, docker's format).
pub fn hosts(extra: &[(String, IpAddr)]) -> String {
    let mut out = HOSTS.to_string();
    for (name, ip) in extra {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    out
}

/// A RUN's host name (BuildKit's), in its UTS namespace and `/etc/hostname`.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Parse an `--add-host` as buildx does: `NAME:IP` or `NAME=IP` (an IPv6 address may follow the
/// first `:` unbracketed, or come in brackets).
pub fn parse_add_host(s: &str) -> std::result::Result<(String, IpAddr), String> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| format!("invalid --add-host {s:?}: expected NAME:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip == "host-gateway" {
        return Err(format!(
            "invalid --add-host {s:?}: host-gateway is docker engine's; name an address"
        ));
    }
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("invalid --add-host {s:?}: {ip:?} is not an IP address"))?;
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        return Err(format!(
            "invalid --add-host {s:?}: {name:?} is not a host name"
        ));
    }
    Ok((name.to_string(), ip))
}

/// How long pasta may take to set the namespace up.
const PASTA_TIMEOUT: Duration = Duration::from_secs(10);

/// The network namespace a RUN's container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The host's (no network namespace of its own).
    Host,
    /// A fresh, empty network namespace: loopback only.
    None,
    /// Join this network namespace (the build's private network, [`PrivateNetwork::network`]).
    Join(PathBuf),
}

impl Network {
    /// RUNs on the private network lose `CAP_NET_RAW` (see the module docs).
    pub(crate) fn restrict_capabilities(
        &self,
        caps: &mut std::collections::HashSet<oci_spec::runtime::Capability>,
    ) {
        if matches!(self, Network::Join(_)) {
            caps.remove(&oci_spec::runtime::Capability::NetRaw);
        }
    }
}

/// The build's private network: a network namespace and the pasta that connects it. Dropping it
/// stops pasta; the namespace goes with the last descriptor.
#[derive(Debug)]
pub struct PrivateNetwork {
    ns: OwnedFd,
    pasta: Child,
}

impl PrivateNetwork {
    /// Create the namespace and start pasta for it; `scratch` is an existing private directory
    /// for pasta's pid and log files, which the caller removes once this returns. Call it from the thread that outlives the
    /// build (pasta's parent-death signal follows the thread that started it).
    pub fn start(scratch: &Path) -> Result<Self> {
        let pasta = find_pasta().ok_or(Error::PastaMissing)?;
        let block = host_addresses()?;
        let ns = new_namespace(&block, false)?;
        let target = scratch.join("netns");
        fs::write(&target, b"").ctx("create", &target)?;
        let pid_file = scratch.join("pasta.pid");
        let log_path = scratch.join("pasta.log");
        let log = fs::File::create(&log_path).ctx("create", &log_path)?;
        let mut cmd = Command::new(&pasta);
        cmd.args(["--foreground", "--quiet", "--config-net", "--no-map-gw"])
            // pasta drops to nobody when started as root, and then cannot join the namespace.
            .args(["--runas", "0"])
            .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
            .args(["--dns-forward", DNS_FORWARD, "--no-netns-quit"])
            .arg("--pid")
            .arg(&pid_file)
            .arg("--netns")
            .arg(&target)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let parent = nix::unistd::getpid();
        let source = CString::new(format!("/proc/self/fd/{}", ns.as_raw_fd()))
            .expect("no NUL in a /proc path");
        let target_c = CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Escape(target.display().to_string()))?;
        // SAFETY: the closure runs between fork and exec and only makes system calls (prctl,
        // getppid, unshare, mount) on data prepared before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                pasta_child_setup(parent, &source, &target_c).map_err(std::io::Error::from)
            });
        }
        let child = cmd.spawn().ctx("start", &pasta)?;
        let mut net = PrivateNetwork { ns, pasta: child };
        net.wait_ready(&pid_file, &log_path)?;
        Ok(net)
    }

    /// What a RUN's spec joins: this process's descriptor of the namespace, by path.
    pub fn network(&self) -> Network {
        Network::Join(PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.ns.as_raw_fd()
        )))
    }

    /// pasta writes its pid file once the namespace is configured.
    fn wait_ready(&mut self, pid_file: &Path, log: &Path) -> Result<()> {
        let start = Instant::now();
        loop {
            if fs::metadata(pid_file).is_ok_and(|m| m.len() > 0) {
                return Ok(());
            }
            let exited = self.pasta.try_wait().ctx("wait for", "pasta")?;
            if exited.is_some() || start.elapsed() > PASTA_TIMEOUT {
                let text = fs::read_to_string(log).unwrap_or_default();
                let message: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
                    .collect();
                return Err(Error::Pasta {
                    message: if message.is_empty() {
                        match exited {
                            Some(s) => format!("pasta exited ({s})"),
                            None => "pasta did not set the namespace up in time".into(),
                        }
                    } else {
                        message.join("; ")
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for PrivateNetwork {
    fn drop(&mut self) {
        let _ = self.pasta.kill();
        let _ = self.pasta.wait();
    }
}

/// In pasta's child, before exec: die with hush; give the namespace a name only pasta sees (a
/// bind mount in a private mount namespace, gone with pasta), as this pasta version takes a path
/// and not a descriptor.
fn pasta_child_setup(
    parent: nix::unistd::Pid,
    source: &std::ffi::CStr,
    target: &std::ffi::CStr,
) -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    if nix::unistd::getppid() != parent {
        // hush died before the signal was armed.
        return Err(nix::errno::Errno::ESRCH);
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&std::ffi::CStr>,
        c"/",
        None::<&std::ffi::CStr>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&std::ffi::CStr>,
    )?;
    mount(
        Some(source),
        target,
        None::<&std::ffi::CStr>,
        MsFlags::MS_BIND,
        None::<&std::ffi::CStr>,
    )
}

/// `pasta` on PATH.
fn find_pasta() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
}

/// Every address of every host interface, loopback aside (the namespace has its own).
fn host_addresses() -> Result<Vec<IpAddr>> {
    let mut v: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map_err(|e| Error::Network {
            action: "list the host's addresses",
            source: e.into(),
        })?
        .filter_map(|i| {
            let a = i.address?;
            if let Some(s) = a.as_sockaddr_in() {
                Some(IpAddr::V4(s.ip()))
            } else {
                a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip()))
            }
        })
        .filter(|a| !a.is_loopback() && !a.is_unspecified())
        .collect();
    v.sort();
    v.dedup();
    Ok(v)
}

/// A new network namespace, made on a short-lived thread (a thread may change its own network
/// namespace without touching the rest of hush), with `ping_group_range` open and `block`
/// unreachable, its loopback up if `lo` (pasta brings up its own). Returns a descriptor that
/// keeps it alive.
fn new_namespace(block: &[IpAddr], lo: bool) -> Result<OwnedFd> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<OwnedFd> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                Error::Network {
                    action: "create a network namespace",
                    source: e.into(),
                }
            })?;
            let ns: OwnedFd = fs::File::open("/proc/thread-self/ns/net")
                .ctx("open", "/proc/thread-self/ns/net")?
                .into();
            // docker's setting: any group may open ICMP echo sockets, so ping works without
            // CAP_NET_RAW.
            let sysctl = "/proc/sys/net/ipv4/ping_group_range";
            fs::write(sysctl, "0 2147483647").ctx("write", sysctl)?;
            let nl = netlink::Socket::open()?;
            for (n, a) in block.iter().enumerate() {
                nl.prohibit(a, n as u32 + 1)?;
            }
            if lo {
                loopback_up()?;
            }
            Ok(ns)
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// The network namespace of every `--network=none` RUN of this process: empty but for its
/// loopback, which is up (runc brings it up in a container's own network namespace, so docker's
/// and BuildKit's `none` RUNs can serve and reach 127.0.0.1 — a test suite's usual need). Made
/// once: a namespace per RUN cost ~1 ms to make and more for the kernel to tear down. Sharing
/// it leaves nothing of one RUN to the next (every process of a RUN dies with it, and its
/// sockets with them); RUNs of parallel stages may reach each other on 127.0.0.1, as
/// containers on one docker network can. Returned as a path to join.
pub(crate) fn loopback_namespace() -> Result<PathBuf> {
    static NS: std::sync::OnceLock<std::result::Result<OwnedFd, String>> =
        std::sync::OnceLock::new();
    let ns = NS.get_or_init(|| {
        new_namespace(&[], true).map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("{e}{cause}")
        })
    });
    match ns {
        Ok(fd) => Ok(PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ))),
        Err(e) => Err(Error::Network {
            action: "create the network namespace of --network=none",
            source: std::io::Error::other(e.clone()),
        }),
    }
}

/// Bring this thread's network namespace's loopback up (`ip link set lo up`).
fn loopback_up() -> Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let failed = |e: nix::Error| Error::Network {
        action: "bring up the loopback of a network namespace",
        source: e.into(),
    };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(failed)?;
    // SAFETY: an all-zero ifreq is valid (a name and a union of plain integers).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write the ifreq `ifr` points to, which
    // lives across both calls; the socket is open.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(failed(nix::errno::Errno::last()));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(failed(nix::errno::Errno::last()));
        }
    }
    Ok(())
}

/// Just enough rtnetlink to add `prohibit` rules (`ip rule add to ADDR prohibit`).
mod netlink {
    use std::net::IpAddr;
    use std::os::fd::{AsRawFd, OwnedFd};

    use nix::sys::socket::{
        bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };

    use crate::{Error, Result};

    const RTM_NEWRULE: u16 = 32;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_ACK: u16 = 0x4;
    const NLM_F_EXCL: u16 = 0x200;
    const NLM_F_CREATE: u16 = 0x400;
    const FR_ACT_PROHIBIT: u8 = 8;
    const FRA_DST: u16 = 1;
    const FRA_PRIORITY: u16 = 6;
    /// After the `local` table (priority 0), so the namespace's own addresses stay its own.
    const PRIORITY: u32 = 100;

    fn failed(action: &'static str) -> impl Fn(nix::Error) -> Error {
        move |e| Error::Network {
            action,
            source: e.into(),
        }
    }

    pub(super) struct Socket(OwnedFd);

    impl Socket {
        pub(super) fn open() -> Result<Self> {
            let fd = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkRoute,
            )
            .map_err(failed("open a netlink socket"))?;
            bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
                .map_err(failed("bind a netlink socket"))?;
            Ok(Socket(fd))
        }

        /// `ip rule add to ADDR prohibit pref 100`.
        pub(super) fn prohibit(&self, addr: &IpAddr, seq: u32) -> Result<()> {
            let msg = rule_message(addr, seq);
            send(self.0.as_raw_fd(), &msg, MsgFlags::empty())
                .map_err(failed("send a netlink rule"))?;
            let mut buf = [0u8; 4096];
            let n = recv(self.0.as_raw_fd(), &mut buf, MsgFlags::empty())
                .map_err(failed("read a netlink answer"))?;
            let ty = (n >= 20).then(|| u16::from_ne_bytes([buf[4], buf[5]]));
            if ty != Some(NLMSG_ERROR) {
                return Err(failed("read a netlink answer")(nix::errno::Errno::EPROTO));
            }
            let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            match code {
                0 => Ok(()),
                c if -c == nix::errno::Errno::EEXIST as i32 => Ok(()),
                c => Err(failed("block a host address in the build network")(
                    nix::errno::Errno::from_raw(-c),
                )),
            }
        }
    }

    /// `nlmsghdr` + `fib_rule_hdr` + `FRA_DST` + `FRA_PRIORITY`.
    pub(super) fn rule_message(addr: &IpAddr, seq: u32) -> Vec<u8> {
        let (family, octets): (u8, Vec<u8>) = match addr {
            IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
        };
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&0u32.to_ne_bytes()); // length, set below
        m.extend_from_slice(&RTM_NEWRULE.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
                                                  // fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        let dst_len = (octets.len() * 8) as u8;
        m.extend_from_slice(&[family, dst_len, 0, 0, 0, 0, 0, FR_ACT_PROHIBIT]);
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&((4 + octets.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&FRA_DST.to_ne_bytes());
        m.extend_from_slice(&octets); // 4 or 16 bytes: already aligned
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&FRA_PRIORITY.to_ne_bytes());
        m.extend_from_slice(&PRIORITY.to_ne_bytes());
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }
}

/// systemd-resolved's stub resolver, and the file where it lists the servers it forwards to.
const SYSTEMD_STUB: &str = "127.0.0.53";
const SYSTEMD_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// `/etc/resolv.conf` for a RUN, from the host's (BuildKit's rules): on the host network the
/// host's file as it is; otherwise its `search` and `options` lines, with the nameserver pasta
/// forwards on the private network, and without loopback nameservers (unreachable there) on
/// `none`. Where the host's only nameserver is systemd-resolved's stub, the lines come from
/// the file naming its upstream servers, as BuildKit's `resolvconf.Path` picks it (pasta itself
/// forwards to the stub, which it reaches from the host's network).
pub fn resolv_conf(network: &Network) -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let host = host_resolv_conf(host, network, || fs::read_to_string(SYSTEMD_UPSTREAM).ok());
    resolv_conf_from(&host, network)
}

/// The host file a RUN's resolv.conf is made from: `/etc/resolv.conf`, or `upstream` where
/// that names systemd-resolved's stub alone and the RUN is not on the host's network.
fn host_resolv_conf(
    etc: String,
    network: &Network,
    upstream: impl FnOnce() -> Option<String>,
) -> String {
    let stub_only = nameservers(&etc).eq([SYSTEMD_STUB]);
    if stub_only && *network != Network::Host {
        if let Some(u) = upstream() {
            return u;
        }
    }
    etc
}

/// The addresses of a resolv.conf's `nameserver` lines, as written.
fn nameservers(conf: &str) -> impl Iterator<Item = &str> {
    conf.lines().filter_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver")).then(|| w.next()).flatten()
    })
}

fn resolv_conf_from(host: &str, network: &Network) -> String {
    if *network == Network::Host {
        return host.to_string();
    }
    let mut out = String::new();
    if matches!(network, Network::Join(_)) {
        out.push_str(&format!("nameserver {DNS_FORWARD}\n"));
    }
    for line in host.lines() {
        let mut words = line.split_whitespace();
        let keep = match words.next() {
            Some("search") | Some("domain") | Some("options") => true,
            Some("nameserver") if *network == Network::None => words
                .next()
                .and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok())
                .is_some_and(|a| !a.is_loopback()),
            _ => false,
        };
        if keep {
            out.push_str(line.trim());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n";

    #[test]
    fn add_host_takes_docker_spellings_and_refuses_the_rest() {
        let ok = |s: &str| parse_add_host(s).unwrap();
        assert_eq!(
            ok("db:10.0.0.5"),
            ("db".into(), "10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            ok("db=10.0.0.5"),
            ("db".into(), "10.0.0.5".parse().unwrap())
        );
        assert_eq!(ok("v6:::1"), ("v6".into(), "::1".parse().unwrap()));
        assert_eq!(
            ok("v6=[fe80::1]"),
            ("v6".into(), "fe80::1".parse().unwrap())
        );
        for bad in [
            "db",
            "db:not-an-ip",
            ":10.0.0.1",
            "a b:10.0.0.1",
            "gw:host-gateway",
            "x\ny:1.2.3.4",
        ] {
            assert!(parse_add_host(bad).is_err(), "{bad}");
        }
        assert_eq!(
            hosts(&[ok("db:10.0.0.5")]),
            format!("{HOSTS}10.0.0.5\tdb\n")
        );
    }

    #[test]
    fn resolv_conf_per_network() {
        assert_eq!(resolv_conf_from(HOST, &Network::Host), HOST);
        assert_eq!(
            resolv_conf_from(HOST, &Network::Join("/proc/1/fd/3".into())),
            "nameserver 169.254.1.1\nsearch corp.example\noptions edns0 trust-ad\n"
        );
        assert_eq!(
            resolv_conf_from(HOST, &Network::None),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0 trust-ad\n"
        );
    }

    /// A host behind systemd-resolved: RUNs off the host network get the upstream servers'
    /// file (BuildKit's choice); the host network keeps the stub, which it reaches.
    #[test]
    fn systemd_resolved_stub_is_replaced_by_its_upstream_file_off_the_host_network() {
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n".to_string();
        let upstream = "nameserver 192.0.2.7\nnameserver 192.0.2.8\nsearch corp.example\n";
        let join = Network::Join("/proc/1/fd/3".into());
        let made = |etc: &str, net: &Network, up: Option<&str>| {
            let host = host_resolv_conf(etc.to_string(), net, || up.map(str::to_string));
            resolv_conf_from(&host, net)
        };
        assert_eq!(made(&stub, &Network::Host, Some(upstream)), stub);
        assert_eq!(
            made(&stub, &Network::None, Some(upstream)),
            "nameserver 192.0.2.7\nnameserver 192.0.2.8\nsearch corp.example\n"
        );
        assert_eq!(
            made(&stub, &join, Some(upstream)),
            "nameserver 169.254.1.1\nsearch corp.example\n"
        );
        // No upstream file: the stub's own lines, without the loopback server on `none`.
        assert_eq!(
            made(&stub, &Network::None, None),
            "options edns0 trust-ad\nsearch lan\n"
        );
        // The stub beside another server, or another loopback resolver: /etc/resolv.conf.
        let mixed = "nameserver 127.0.0.53\nnameserver 10.0.0.2\n";
        assert_eq!(
            made(mixed, &Network::None, Some(upstream)),
            "nameserver 10.0.0.2\n"
        );
        let dnsmasq = "nameserver 127.0.0.1\n";
        assert_eq!(made(dnsmasq, &Network::None, Some(upstream)), "");
    }

    #[test]
    fn prohibit_rule_messages() {
        let m = netlink::rule_message(&"10.1.2.3".parse().unwrap(), 7);
        assert_eq!(m.len(), 16 + 12 + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(&m[16..24], &[libc::AF_INET as u8, 32, 0, 0, 0, 0, 0, 8]);
        assert_eq!(&m[32..36], &[10, 1, 2, 3]);
        let m6 = netlink::rule_message(&"fe80::1".parse().unwrap(), 8);
        assert_eq!(m6.len(), 16 + 12 + 20 + 8);
        assert_eq!(m6[17], 128);
    }

    #[test]
    fn only_the_private_network_loses_net_raw() {
        use oci_spec::runtime::Capability;
        let caps: std::collections::HashSet<Capability> = [Capability::NetRaw, Capability::Chown]
            .into_iter()
            .collect();
        let mut c = caps.clone();
        Network::Host.restrict_capabilities(&mut c);
        Network::None.restrict_capabilities(&mut c);
        assert_eq!(c, caps);
        Network::Join("/proc/1/fd/3".into()).restrict_capabilities(&mut c);
        assert!(!c.contains(&Capability::NetRaw) && c.contains(&Capability::Chown));
    }
}
