//! The network of a RUN, attacked from inside and checked from the host: the default private
//! network (pasta) reaches out but not back into the host; `--network=host` is an explicit
//! choice; nothing of the network outlives the build. Needs root, busybox and pasta; never
//! reaches an address outside this machine (only loopback and namespaces the tests create).

mod common;
use common::{log, run_in};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn can_run() -> bool {
    common::can_run(&["busybox", "pasta", "ip"])
}

/// One store with busybox:local for all tests of this binary.
fn store() -> &'static Path {
    common::shared_store()
}

/// A context with this Dockerfile (and `files`), built with `args`.
fn build(dockerfile: &str, files: &[(&str, &[u8])], args: &[&str]) -> (Output, tempfile::TempDir) {
    let ctx = context(dockerfile, files);
    let mut all = vec!["build", "--progress=plain", "--no-cache"];
    all.extend_from_slice(args);
    all.push(".");
    let o = run_in(&store().join("root"), &all, ctx.path());
    (o, ctx)
}

fn context(dockerfile: &str, files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let ctx = tempfile::Builder::new()
        .prefix("hush-net-ctx-")
        .tempdir()
        .unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, data) in files {
        let p = ctx.path().join(name);
        std::fs::write(&p, data).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    ctx
}

/// A TCP service on the host that answers every connection with a secret and counts them.
struct HostService {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl HostService {
    fn start(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for mut c in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = c.write_all(b"HOST-SERVICE-SECRET\n");
            }
        });
        HostService { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A network namespace of the test's own, joined to the host by a veth pair (`10.213.N.1` on the
/// host, `10.213.N.2` inside), serving a file over HTTP with busybox httpd. Everything is removed
/// on drop, also when the test fails.
struct Inet {
    ns: String,
    host_if: String,
    host_addr: String,
    addr: String,
    httpd: Option<std::process::Child>,
    _www: tempfile::TempDir,
}

impl Inet {
    fn new(body: &str) -> Inet {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id() as usize;
        let net = (pid * 4 + n) % 250;
        let ns = format!("hushtest-inet-{pid}-{n}");
        let host_if = format!("hti{}{n}a", pid % 100000);
        let peer = format!("hti{}{n}b", pid % 100000);
        let host_addr = format!("10.213.{net}.1");
        let addr = format!("10.213.{net}.2");
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), body).unwrap();
        let mut inet = Inet {
            ns: ns.clone(),
            host_if: host_if.clone(),
            host_addr: host_addr.clone(),
            addr: addr.clone(),
            httpd: None,
            _www: www,
        };
        ip(&format!("netns add {ns}"));
        ip(&format!(
            "link add {host_if} type veth peer name {peer} netns {ns}"
        ));
        ip(&format!("addr add {host_addr}/30 dev {host_if}"));
        ip(&format!("link set {host_if} up"));
        ip(&format!("-n {ns} addr add {addr}/30 dev {peer}"));
        ip(&format!("-n {ns} link set {peer} up"));
        ip(&format!("-n {ns} link set lo up"));
        inet.httpd = Some(
            Command::new("ip")
                .args(["netns", "exec", &ns, "busybox", "httpd", "-f", "-p"])
                .arg(format!("{addr}:8080"))
                .arg("-h")
                .arg(inet._www.path())
                .spawn()
                .unwrap(),
        );
        // Ready when it answers from the host.
        let start = Instant::now();
        while TcpStream::connect((addr.as_str(), 8080)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "httpd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        inet
    }
}

impl Drop for Inet {
    fn drop(&mut self) {
        if let Some(mut h) = self.httpd.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// `ip ARGS`, which must succeed.
fn ip(args: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("ip {args}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "ip {args}: {}", log(&o));
}

/// The host's addresses (every interface), for a RUN to try.
fn host_addresses() -> Vec<String> {
    let o = Command::new("ip").args(["-o", "addr"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let dev = w.nth(1)?.to_string();
            let family = w.next()?;
            let addr = w.next()?.split('/').next()?.to_string();
            Some(match family {
                "inet6" if addr.starts_with("fe80") => format!("{addr}%{dev}"),
                _ => addr,
            })
        })
        .collect()
}

/// A RUN that tries `port` on every address given, printing what answers.
fn probe_all(addrs: &[String], port: u16) -> String {
    let tries: Vec<String> = addrs
        .iter()
        .map(|a| format!("nc -w 2 {a} {port} </dev/null; "))
        .collect();
    format!("FROM busybox:local\nRUN {} true\n", tries.join(""))
}

#[test]
fn host_loopback_and_host_addresses_are_unreachable_by_default() {
    if !can_run() {
        return;
    }
    // Another local address of the host, as docker0 or a VPN would add.
    let inet = Inet::new("unused");
    let lo = HostService::start(TcpListener::bind("127.0.0.1:0").unwrap());
    let any = HostService::start(TcpListener::bind("[::]:0").unwrap());
    let mut addrs = host_addresses();
    assert!(addrs.contains(&inet.host_addr), "{addrs:?}");
    addrs.push("127.0.0.1".into());

    let (o, _c) = build(&probe_all(&["127.0.0.1".into()], lo.port), &[], &[]);
    assert!(o.status.success(), "{}", log(&o));
    let (o2, _c) = build(&probe_all(&addrs, any.port), &[], &[]);
    assert!(o2.status.success(), "{}", log(&o2));
    for o in [&o, &o2] {
        assert!(!log(o).contains("HOST-SERVICE-SECRET"), "{}", log(o));
    }
    assert_eq!((lo.accepted(), any.accepted()), (0, 0));

    // The same RUN on the host network does reach them: the probe works.
    let (o, _c) = build(
        &probe_all(&["127.0.0.1".into()], lo.port),
        &[],
        &["--network=host"],
    );
    assert!(log(&o).contains("HOST-SERVICE-SECRET"), "{}", log(&o));
    assert_eq!(lo.accepted(), 1);
}

#[test]
fn a_run_cannot_publish_a_port_on_the_host() {
    if !can_run() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctx = context(
        &format!(
            "FROM busybox:local\nRUN (nc -l -p {port} -e echo RUN-SERVICE &) ; sleep 0.5; \
             netstat -ltn | grep -q ':{port} ' && echo LISTENING; sleep 3\n"
        ),
        &[],
    );
    let mut child = Command::new(common::hush())
        .env("HUSH_ROOT", store().join("root"))
        .current_dir(ctx.path())
        .args(["build", "--progress=plain", "--no-cache", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push_str(&l);
        seen.push('\n');
        if l.ends_with("LISTENING") {
            break;
        }
    }
    assert!(seen.contains("LISTENING"), "{seen}");
    // pasta's `-t auto` would publish it within a second; look twice.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1200));
        let listening = listening_ports();
        assert!(
            !listening.contains(&port),
            "port {port} listens on the host"
        );
        for host in ["127.0.0.1", "::1"] {
            if let Ok(mut s) = TcpStream::connect((host, port)) {
                let mut b = String::new();
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let _ = s.read_to_string(&mut b);
                panic!("the RUN's port {port} answered on the host at {host}: {b:?}");
            }
        }
    }
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert!(child.wait().unwrap().success(), "{seen}{}", rest.join("\n"));
}

/// Ports with a listening TCP socket in the host's network namespace.
fn listening_ports() -> Vec<u16> {
    let mut v = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        for l in t.lines().skip(1) {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() > 3 && w[3] == "0A" {
                if let Some(p) = w[1].rsplit(':').next() {
                    v.push(u16::from_str_radix(p, 16).unwrap());
                }
            }
        }
    }
    v
}

/// A static program that opens an AF_PACKET socket and looks for `argv[1]` in every frame for
/// `argv[2]` seconds.
const SNIFFER: &str = r#"
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
int main(int argc, char **argv) {
    const char *marker = argv[1];
    int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (s < 0) { printf("SNIFFER socket: %s\n", strerror(errno)); return 0; }
    struct timeval tv = {0, 200000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    time_t end = time(NULL) + atoi(argv[2]);
    static char buf[65536];
    long n = 0;
    while (time(NULL) < end) {
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0) continue;
        n++;
        if (memmem(buf, r, marker, strlen(marker))) { printf("SNIFFER SAW-HOST-TRAFFIC\n"); return 0; }
    }
    printf("SNIFFER frames=%ld none from the host\n", n);
    return 0;
}
"#;

#[test]
fn af_packet_in_a_run_sees_none_of_the_hosts_traffic() {
    if !can_run() || !common::can_run(&["gcc"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sniffer.c"), SNIFFER).unwrap();
    let cc = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.path().join("sniffer"))
        .arg(dir.path().join("sniffer.c"))
        .output()
        .unwrap();
    if !cc.status.success() {
        common::skip(&format!(
            "gcc -static failed (no static libc?): {}",
            log(&cc)
        ));
        return;
    }
    let sniffer = std::fs::read(dir.path().join("sniffer")).unwrap();
    // Host loopback traffic carrying a marker, all along the build.
    let marker = format!("HUSH-NET-MARK-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (stop, marker) = (stop.clone(), marker.clone());
        std::thread::spawn(move || {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::SeqCst) {
                let _ = u.send_to(marker.as_bytes(), "127.0.0.1:9");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // The marker is split in the Dockerfile so the command line itself never holds it.
    let (head, tail) = marker.split_at(6);
    let df = format!(
        "FROM busybox:local\nRUN --mount=type=bind,source=sniffer,target=/sniffer /sniffer \"{head}\"\"{tail}\" 3\n"
    );
    let files: &[(&str, &[u8])] = &[("sniffer", &sniffer)];
    let (default, _c) = build(&df, files, &[]);
    let (host, _c) = build(&df, files, &["--network=host"]);
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
    assert!(default.status.success(), "{}", log(&default));
    assert!(
        !log(&default).contains("SAW-HOST-TRAFFIC"),
        "{}",
        log(&default)
    );
    // Not even the socket: pasta forwards frames written onto its interface to any address,
    // the host's 127.0.0.1 included, so the private network has no CAP_NET_RAW.
    assert!(
        log(&default).contains("SNIFFER socket: Operation not permitted"),
        "{}",
        log(&default)
    );
    // On the host network the same probe does see it: the probe works.
    assert!(log(&host).contains("SAW-HOST-TRAFFIC"), "{}", log(&host));
}

#[test]
fn outbound_through_pasta_with_resolv_conf_and_hosts_that_stay_out_of_layers() {
    if !can_run() {
        return;
    }
    let inet = Inet::new("HELLO-FROM-OUTSIDE\n");
    // The request is not followed by a half-close: the Debian 12 pasta (2023-03-09) sometimes
    // drops the reply to a connection the client has half-closed, and the RUN would hang.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("oci");
    let df = format!(
        "FROM busybox:local\n\
         COPY hosts /etc/hosts\n\
         RUN (printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n'; sleep 2) | timeout 10 nc {addr} 8080 > /fetched; \
             cat /fetched; test -s /etc/resolv.conf; cat /etc/resolv.conf /etc/hosts\n",
        addr = inet.addr
    );
    let files: &[(&str, &[u8])] = &[("hosts", b"10.9.9.9\timage-own-hosts\n")];
    let dest_arg = format!("type=oci,dest={}", dest.display());
    let (o, _c) = build(&df, files, &["-o", &dest_arg]);
    let text = log(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("HELLO-FROM-OUTSIDE"), "{text}");
    assert!(text.contains("nameserver 169.254.1.1"), "{text}");
    // The RUN saw the generated hosts file, not the image's.
    assert!(text.contains("localhost buildkitsandbox"), "{text}");
    assert!(!text.contains("image-own-hosts"), "{text}");
    // In the layers: the image's /etc/hosts (from COPY), once; no resolv.conf; the fetched page.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for l in {}/blobs/sha256/*; do tar -tf $l 2>/dev/null; done",
            dest.display()
        ))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        names.lines().filter(|l| *l == "etc/hosts").count(),
        1,
        "{names}"
    );
    assert!(!names.lines().any(|l| l == "etc/resolv.conf"), "{names}");
    assert!(names.lines().any(|l| l == "fetched"), "{names}");
    let hosts = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for l in {}/blobs/sha256/*; do tar -xOf $l etc/hosts 2>/dev/null; done",
            dest.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&hosts.stdout),
        "10.9.9.9\timage-own-hosts\n"
    );
}

#[test]
fn run_network_host_needs_allow_network_host() {
    if !can_run() {
        return;
    }
    let df = "FROM busybox:local\nRUN echo FIRST-STEP-RAN\nRUN --network=host ls /sys/class/net\n";
    let (o, _c) = build(df, &[], &[]);
    let text = log(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("network.host"), "{text}");
    assert!(text.contains("Dockerfile:3"), "{text}");
    assert!(text.contains("--allow network.host"), "{text}");
    assert!(!text.contains("FIRST-STEP-RAN"), "a step ran: {text}");

    let (o, _c) = build(df, &[], &["--allow", "network.host"]);
    let text = log(&o);
    assert!(o.status.success(), "{text}");
    // It did get the host's interfaces.
    let host_ifs = std::fs::read_dir("/sys/class/net").unwrap();
    for i in host_ifs {
        let name = i.unwrap().file_name().to_string_lossy().to_string();
        assert!(text.contains(&name), "{name} missing: {text}");
    }

    let (o, _c) = build("FROM busybox:local\nRUN --network=bridge true\n", &[], &[]);
    assert!(!o.status.success());
    assert!(
        log(&o).contains("unsupported network mode \"bridge\""),
        "{}",
        log(&o)
    );
}

/// pasta processes started by the hush with this pid (their `--netns` path names it).
fn pastas_of(hush_pid: u32) -> Vec<u32> {
    // pasta's files live in the build's work dir, `HUSH_ROOT/tmp/<pid>-<random>/net-…`.
    let needle = format!("/tmp/{hush_pid}-");
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let argv0 = cmd.split(' ').next().unwrap_or_default();
        if argv0.ends_with("pasta") && cmd.contains(&needle) && cmd.contains("/net-") {
            v.push(pid);
        }
    }
    v
}

/// Does any process still hold this network namespace (`net:[N]`), as its namespace or an fd?
fn netns_alive(id: &str) -> bool {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        if std::fs::read_link(e.path().join("ns/net")).is_ok_and(|l| l.to_string_lossy() == id) {
            return true;
        }
        if let Ok(fds) = std::fs::read_dir(e.path().join("fd")) {
            for f in fds.flatten() {
                if std::fs::read_link(f.path()).is_ok_and(|l| l.to_string_lossy() == id) {
                    return true;
                }
            }
        }
    }
    false
}

/// Start a build whose first RUN prints its network namespace and `READY`, then `rest`; return
/// the child, its namespace id and the output so far.
fn start_build(rest: &str) -> (std::process::Child, String, tempfile::TempDir) {
    let ctx = context(
        &format!(
            "FROM busybox:local\nRUN echo NETNS=$(readlink /proc/self/ns/net); echo READY; {rest}\n"
        ),
        &[],
    );
    let mut child = Command::new(common::hush())
        .env("HUSH_ROOT", store().join("root"))
        .current_dir(ctx.path())
        .args(["build", "--progress=plain", "--no-cache", "."])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut netns = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for l in lines.by_ref() {
        let l = l.unwrap();
        if let Some(n) = l.split("NETNS=").nth(1) {
            netns = n.trim().to_string();
        }
        if l.ends_with("READY") {
            break;
        }
    }
    assert!(netns.starts_with("net:["), "no namespace id printed");
    // Keep draining the output so that hush never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, netns, ctx)
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "still there after {secs}s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_pasta_or_namespace_outlives_the_build() {
    if !can_run() {
        return;
    }
    // A build that succeeds, and one whose RUN fails.
    for (rest, success) in [("true", true), ("exit 3", false)] {
        let (mut child, netns, _c) = start_build(rest);
        let pid = child.id();
        let status = child.wait().unwrap();
        assert_eq!(status.success(), success);
        assert_eq!(pastas_of(pid), Vec::<u32>::new(), "pasta left after {rest}");
        assert!(!netns_alive(&netns), "{netns} left after {rest}");
    }
    // Ctrl-C (SIGINT to hush alone): the build unwinds and stops pasta.
    let (mut child, netns, _c) = start_build("sleep 5");
    let pid = child.id();
    assert_eq!(pastas_of(pid).len(), 1, "pasta is not running");
    let k = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(pastas_of(pid), Vec::<u32>::new(), "pasta left after Ctrl-C");
    wait_until("the network namespace after Ctrl-C", 2, || {
        !netns_alive(&netns)
    });
    // hush killed with SIGKILL in the middle of a RUN: pasta dies with it (parent-death signal).
    // The RUN's own container is not hush's to kill then; the namespace goes when it ends.
    let (mut child, netns, _c) = start_build("sleep 2");
    let pid = child.id();
    assert_eq!(pastas_of(pid).len(), 1, "pasta is not running");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("pasta after kill -9 of hush", 2, || {
        pastas_of(pid).is_empty()
    });
    wait_until("the network namespace after kill -9", 10, || {
        !netns_alive(&netns)
    });
}

#[test]
fn missing_pasta_is_a_clear_error() {
    if !can_run() {
        return;
    }
    let ctx = context("FROM busybox:local\nRUN true\n", &[]);
    let o = Command::new(common::hush())
        .env("HUSH_ROOT", store().join("root"))
        .env("PATH", "/nonexistent")
        .current_dir(ctx.path())
        .args(["build", "--progress=plain", "--no-cache", "."])
        .output()
        .unwrap();
    let text = log(&o);
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("pasta"), "{text}");
    assert!(text.contains("apt-get install passt"), "{text}");
    // --network=none needs no pasta.
    let o = Command::new(common::hush())
        .env("HUSH_ROOT", store().join("root"))
        .env("PATH", "/nonexistent")
        .current_dir(ctx.path())
        .args([
            "build",
            "--progress=plain",
            "--no-cache",
            "--network=none",
            ".",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", log(&o));
}

/// `--network=none` (and `RUN --network=none`): loopback up, as runc gives a container of its
/// own network — a RUN can serve and reach 127.0.0.1 (a test suite's usual need); hush's `none`
/// had it down ("Network is unreachable"). The host's loopback stays out of reach, and nothing
/// one RUN started answers in the next (the RUNs of a build share one such namespace).
#[test]
fn network_none_has_loopback_and_nothing_else() {
    if !can_run() {
        return;
    }
    let host = HostService::start(TcpListener::bind("127.0.0.1:0").unwrap());
    let df = format!(
        "FROM busybox:local\n\
         RUN (printf 'LOOPBACK%sSERVED' - | nc -l -p 7777 &) ; sleep 0.3; \
             nc -w 2 127.0.0.1 7777 </dev/null > /served\n\
         RUN (printf 'LEFT%sBEHIND' - | nc -l -p 7778 &) ; sleep 0.3; true\n\
         RUN --network=none ! nc -w 2 127.0.0.1 7778 </dev/null && \
             ! nc -w 2 127.0.0.1 {} </dev/null && cat /served\n",
        host.port
    );
    let (o, _c) = build(&df, &[], &["--network=none"]);
    let text = log(&o);
    assert!(o.status.success(), "{text}");
    // (The commands print the markers with printf: the step titles do not hold them.)
    assert!(text.contains("LOOPBACK-SERVED"), "{text}");
    assert!(
        !text.contains("LEFT-BEHIND") && !text.contains("HOST-SERVICE-SECRET"),
        "{text}"
    );
    assert_eq!(host.accepted(), 0);
}

/// `--add-host` lines and the host name are in the RUN's /etc/hosts and /etc/hostname,
/// `--shm-size` sizes its /dev/shm; none of the files lands in a layer.
#[test]
fn add_host_hostname_and_shm_size_reach_the_run_and_stay_out_of_layers() {
    if !can_run() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("oci");
    let df = "FROM busybox:local\n\
              RUN grep -w db /etc/hosts > /seen; cat /etc/hostname >> /seen; hostname >> /seen; \
                  df -k /dev/shm | tail -1 | awk '{print $2}' >> /seen\n";
    let dest_arg = format!("type=oci,dest={}", dest.display());
    let (o, _c) = build(
        df,
        &[],
        &[
            "--network=none",
            "--add-host",
            "db:10.1.2.3",
            "--shm-size",
            "16m",
            "-o",
            &dest_arg,
        ],
    );
    assert!(o.status.success(), "{}", log(&o));
    let seen = layers(&dest, "-xOf $l seen");
    assert_eq!(
        seen, "10.1.2.3\tdb\nbuildkitsandbox\nbuildkitsandbox\n16384\n",
        "{seen}"
    );
    assert_no_network_files(&dest);
    let bad = build("FROM busybox:local\n", &[], &["--add-host", "db:nowhere"]).0;
    assert_eq!(bad.status.code(), Some(2), "{}", log(&bad));
    assert!(log(&bad).contains("not an IP address"), "{}", log(&bad));
}

/// `tar ARGS` (with `$l` the layer) over every blob of an OCI layout, outputs joined.
fn layers(oci: &Path, args: &str) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for l in {}/blobs/sha256/*; do tar {args} 2>/dev/null; done",
            oci.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// None of the files hush mounts for a RUN is in a layer of this OCI layout.
fn assert_no_network_files(oci: &Path) {
    let names = layers(oci, "-tf $l");
    let names: Vec<&str> = names.lines().map(|l| l.trim_start_matches("./")).collect();
    assert!(names.contains(&"bin/sh"), "no layer read: {names:?}");
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        assert!(!names.contains(&f), "{f} in a layer: {names:?}");
    }
}

/// The name the test resolver answers, and its address.
const TEST_NAME: &str = "hush-test.internal";
const TEST_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 88, 99);

/// A DNS server on this socket: `A` of [`TEST_NAME`] is [`TEST_ADDR`]; any other question gets
/// an empty answer, another name NXDOMAIN. Counts the questions about [`TEST_NAME`].
fn serve_dns(sock: UdpSocket) -> Arc<AtomicUsize> {
    use simple_dns::{rdata, Packet, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let Ok(query) = Packet::parse(&buf[..n]) else {
                continue;
            };
            let mut reply = Packet::new_reply(query.id());
            for q in &query.questions {
                reply.questions.push(q.clone());
                if q.qname.to_string() != TEST_NAME {
                    *reply.rcode_mut() = RCODE::NameError;
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                if q.qtype == QTYPE::TYPE(TYPE::A) {
                    reply.answers.push(ResourceRecord::new(
                        q.qname.clone(),
                        CLASS::IN,
                        60,
                        rdata::RData::A(TEST_ADDR.into()),
                    ));
                }
            }
            if let Ok(bytes) = reply.build_bytes_vec() {
                let _ = sock.send_to(&bytes, peer);
            }
        }
    });
    asked
}

/// DNS in a RUN, for real: the "host" resolves names through a resolver on loopback — a
/// network namespace of the test's own, with a route out (so pasta has an interface to follow),
/// a DNS server on systemd-resolved's stub address 127.0.0.53, and hush run in a mount
/// namespace where `/etc/resolv.conf` names it. On the private network the RUN asks pasta's
/// 169.254.1.1 and pasta forwards to that loopback resolver; on the host network the RUN reads
/// the host's file and asks the resolver itself; on `none` the name does not resolve, at once,
/// and nothing reaches the resolver. The RUNs write to none of the mounted files, and the
/// layers hold none of them.
#[test]
fn dns_in_a_run_goes_to_the_hosts_loopback_resolver() {
    if !can_run() || !common::can_run(&["unshare", "mount"]) {
        return;
    }
    // Everything in a thread of its own, which alone enters the new network namespace.
    std::thread::spawn(dns_in_own_namespace).join().unwrap();
}

fn dns_in_own_namespace() {
    // SAFETY: unshare(2) changes this thread's network namespace only (no memory involved).
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
    for args in [
        "link set lo up",
        "link add hushdns0 type veth peer name hushdns1",
        "addr add 10.214.0.1/24 dev hushdns0",
        "link set hushdns0 up",
        "link set hushdns1 up",
        "route add default via 10.214.0.2",
    ] {
        ip(args);
    }
    let asked = serve_dns(UdpSocket::bind("127.0.0.53:53").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.53\nsearch hush.example\n").unwrap();
    let build = |network: &str, dockerfile: &str| {
        let ctx = context(dockerfile, &[]);
        let dest = ctx.path().join("oci");
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"")
            .arg(&resolv)
            .arg(common::hush())
            .args(["build", "--progress=plain", "--no-cache", network, "-o"])
            .arg(format!("type=oci,dest={}", dest.display()))
            .arg(".")
            .env("HUSH_ROOT", store().join("root"))
            .current_dir(ctx.path())
            .output()
            .unwrap();
        let text = log(&o);
        assert!(o.status.success(), "{network}: {text}");
        assert_no_network_files(&dest);
        (text, layers(&dest, "-xOf $l seen"))
    };
    let resolve = "FROM busybox:local\n\
                   RUN cat /etc/resolv.conf > /seen; nslookup hush-test.internal >> /seen; \
                       ! echo x >> /etc/resolv.conf && ! echo x >> /etc/hosts && \
                       ! echo x >> /etc/hostname\n";
    // The RUN reads `nameserver`, and the name resolves through the test's resolver.
    let mut before = 0;
    for (network, nameserver) in [
        ("--network=default", "169.254.1.1"),
        ("--network=host", "127.0.0.53"),
    ] {
        let (text, seen) = build(network, resolve);
        let head = format!("nameserver {nameserver}\nsearch hush.example\n");
        assert!(seen.starts_with(&head), "{network}: {seen}\n{text}");
        assert!(
            seen.contains(&format!("Address: {TEST_ADDR}")),
            "{network}: {seen}\n{text}"
        );
        let now = asked.load(Ordering::SeqCst);
        assert!(
            now > before,
            "{network}: the resolver was not asked: {text}"
        );
        before = now;
    }
    let by_host = before;

    let start = Instant::now();
    let (text, seen) = build(
        "--network=none",
        "FROM busybox:local\n\
         RUN cat /etc/resolv.conf > /seen; ! nslookup hush-test.internal >> /seen 2>&1\n",
    );
    assert!(seen.starts_with("search hush.example\n"), "{seen}\n{text}");
    assert!(!seen.contains(&TEST_ADDR.to_string()), "{seen}\n{text}");
    assert!(start.elapsed() < Duration::from_secs(30), "{text}");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        by_host,
        "none asked the resolver"
    );
}
