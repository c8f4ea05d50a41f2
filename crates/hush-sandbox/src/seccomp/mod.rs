//! The seccomp filter of every RUN: docker's default policy, kept as data in
//! [`default.policy`](default.policy) and turned into the OCI `linux.seccomp` section that
//! `libcontainer` loads.
//!
//! The policy is docker's so that whatever builds under `docker build` builds here, and whatever
//! docker refuses a container (new namespaces, mounts, the kernel keyring, modules, `bpf`,
//! vsock…) a RUN is refused too. Rules that depend on capabilities are resolved against the
//! RUN's bounding set when the filter is made, as docker does.

use std::collections::HashSet;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use crate::{Error, Result};

const POLICY: &str = include_str!("default.policy");

/// EPERM: what a syscall that no rule allows returns (docker's `defaultErrnoRet`).
const EPERM: u32 = 1;

/// One line of the policy.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    errno: Option<u32>,
    caps: Vec<(bool, Capability)>,
    arches: Option<Vec<String>>,
    args: Vec<Arg>,
    names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Arg {
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    mask: Option<u64>,
}

fn bad(line: usize, what: impl Into<String>) -> Error {
    Error::Seccomp(format!("default.policy:{line}: {}", what.into()))
}

fn parse_arg(line: usize, cond: &str) -> Result<Arg> {
    let rest = &cond[3..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let index: usize = rest[..digits]
        .parse()
        .map_err(|_| bad(line, format!("no argument index in {cond:?}")))?;
    let rest = &rest[digits..];
    let num = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| bad(line, format!("not a number: {s:?}")))
    };
    if let Some(v) = rest.strip_prefix("==") {
        return Ok(Arg {
            index,
            op: LinuxSeccompOperator::ScmpCmpEq,
            value: num(v)?,
            mask: None,
        });
    }
    if let Some(v) = rest.strip_prefix("!=") {
        return Ok(Arg {
            index,
            op: LinuxSeccompOperator::ScmpCmpNe,
            value: num(v)?,
            mask: None,
        });
    }
    if let Some((mask, v)) = rest.strip_prefix('&').and_then(|r| r.split_once("==")) {
        return Ok(Arg {
            index,
            op: LinuxSeccompOperator::ScmpCmpMaskedEq,
            value: num(v)?,
            mask: Some(num(mask)?),
        });
    }
    Err(bad(line, format!("unknown comparison {cond:?}")))
}

fn parse(text: &str) -> Result<Vec<Rule>> {
    let mut rules = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (head, names) = l
            .split_once(" : ")
            .ok_or_else(|| bad(line, "expected 'ACTION [CONDITION]... : SYSCALL...'"))?;
        let mut words = head.split_whitespace();
        let errno = match words.next() {
            Some("allow") => None,
            Some(a) => match a.strip_prefix("errno=") {
                Some(n) => Some(
                    n.parse()
                        .map_err(|_| bad(line, format!("not an errno: {n:?}")))?,
                ),
                None => return Err(bad(line, format!("unknown action {a:?}"))),
            },
            None => return Err(bad(line, "no action")),
        };
        let mut rule = Rule {
            errno,
            caps: Vec::new(),
            arches: None,
            args: Vec::new(),
            names: names.split_whitespace().map(str::to_string).collect(),
        };
        for cond in words {
            let (negated, c) = match cond.strip_prefix('!') {
                Some(c) => (true, c),
                None => (false, cond),
            };
            if let Some(cap) = c.strip_prefix("cap=") {
                let cap: Capability = cap
                    .strip_prefix("CAP_")
                    .unwrap_or("")
                    .parse()
                    .map_err(|_| bad(line, format!("unknown capability {cap:?}")))?;
                rule.caps.push((!negated, cap));
            } else if let Some(a) = c.strip_prefix("arch=") {
                rule.arches = Some(a.split(',').map(str::to_string).collect());
            } else if c.starts_with("arg") && !negated {
                rule.args.push(parse_arg(line, c)?);
            } else {
                return Err(bad(line, format!("unknown condition {cond:?}")));
            }
        }
        if rule.names.is_empty() {
            return Err(bad(line, "no syscall names"));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| parse(POLICY).expect("the built-in seccomp policy parses (unit test)"))
}

/// The architectures a filter covers on this host: the native one and the 32-bit ones its
/// kernel also runs (docker's `archMap`).
fn arches() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "powerpc64" => vec![Arch::ScmpArchPpc64le],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The filter for a RUN whose bounding set is `caps`, on the architecture `arch`.
fn profile_for(rules: &[Rule], caps: &HashSet<Capability>, arch: &str) -> Result<LinuxSeccomp> {
    let bad = |e: oci_spec::OciSpecError| Error::Seccomp(e.to_string());
    let mut plain: Vec<String> = Vec::new();
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for r in rules {
        let caps_ok = r.caps.iter().all(|(want, c)| caps.contains(c) == *want);
        let arch_ok = r
            .arches
            .as_ref()
            .is_none_or(|a| a.iter().any(|x| x == arch));
        if !caps_ok || !arch_ok {
            continue;
        }
        if r.errno.is_none() && r.args.is_empty() {
            plain.extend(r.names.iter().cloned());
            continue;
        }
        let mut b = LinuxSyscallBuilder::default().names(r.names.clone());
        b = match r.errno {
            None => b.action(LinuxSeccompAction::ScmpActAllow),
            Some(n) => b.action(LinuxSeccompAction::ScmpActErrno).errno_ret(n),
        };
        if !r.args.is_empty() {
            let args = r
                .args
                .iter()
                .map(|a| {
                    // libcontainer compares `(arg & valueTwo) == value` for a masked equality.
                    let mut ab = LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(a.op);
                    if let Some(m) = a.mask {
                        ab = ab.value_two(m);
                    }
                    ab.build().map_err(bad)
                })
                .collect::<Result<Vec<_>>>()?;
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(bad)?);
    }
    plain.sort();
    plain.dedup();
    // Unconditional rules first: a syscall allowed outright needs no conditional rule too.
    syscalls.retain(|s| s.args().is_some() || s.names().iter().any(|n| !plain.contains(n)));
    let mut all = vec![LinuxSyscallBuilder::default()
        .names(plain)
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .map_err(bad)?];
    all.extend(syscalls);
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(arches())
        .syscalls(all)
        .build()
        .map_err(bad)
}

/// docker's default filter for a RUN whose bounding set is `caps`.
pub fn default_profile(caps: &HashSet<Capability>) -> Result<LinuxSeccomp> {
    profile_for(rules(), caps, std::env::consts::ARCH)
}

/// `profile` compiled to the kernel's BPF (an array of `struct sock_filter`), as libcontainer
/// would compile it in every container. Compiling for the three x86 ABIs takes ~7.5 ms, longer
/// than the rest of a RUN's start; compiled once, a RUN only loads it.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
    let e = |what: &str, err: libseccomp::error::SeccompError| {
        Error::Seccomp(format!("failed to {what}: {err}"))
    };
    let action = |a: LinuxSeccompAction, errno: Option<u32>| match a {
        LinuxSeccompAction::ScmpActAllow => Ok(ScmpAction::Allow),
        LinuxSeccompAction::ScmpActErrno => Ok(ScmpAction::Errno(errno.unwrap_or(EPERM) as i32)),
        other => Err(Error::Seccomp(format!(
            "action {other:?} is not used by hush"
        ))),
    };
    let mut ctx = ScmpFilterContext::new(action(
        profile.default_action(),
        profile.default_errno_ret(),
    )?)
    .map_err(|err| e("create a filter", err))?;
    // hush sets no_new_privs itself, just before it loads the filter.
    ctx.set_ctl_nnp(false)
        .map_err(|err| e("configure the filter", err))?;
    // Syscalls sorted into a binary tree (libseccomp ≥ 2.5), not tested one after the other:
    // each call walks ~log2(n) comparisons, and the kernel, which emulates the filter for every
    // syscall number when it is loaded (to cache the ones always allowed), does ~10x less work
    // per RUN. Same rules, same verdicts (tests/security_run.rs tries the refused calls).
    ctx.set_ctl_optimize(2)
        .map_err(|err| e("configure the filter", err))?;
    for arch in profile.architectures().iter().flatten() {
        let a = match arch {
            Arch::ScmpArchX86_64 => ScmpArch::X8664,
            Arch::ScmpArchX86 => ScmpArch::X86,
            Arch::ScmpArchX32 => ScmpArch::X32,
            Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
            Arch::ScmpArchArm => ScmpArch::Arm,
            Arch::ScmpArchS390x => ScmpArch::S390X,
            Arch::ScmpArchS390 => ScmpArch::S390,
            Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
            Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
            _ => ScmpArch::Native,
        };
        ctx.add_arch(a)
            .map_err(|err| e("add an architecture", err))?;
    }
    for sc in profile.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret())?;
        let conds: Vec<ScmpArgCompare> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let op = match a.op() {
                    LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
                    LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        ScmpCompareOp::MaskedEqual(a.value_two().unwrap_or(0))
                    }
                    other => return Err(Error::Seccomp(format!("{other:?} is not used by hush"))),
                };
                Ok(ScmpArgCompare::new(a.index() as u32, op, a.value()))
            })
            .collect::<Result<_>>()?;
        for name in sc.names() {
            // A name this architecture does not know is skipped, as libcontainer does.
            let Ok(call) = libseccomp::ScmpSyscall::from_name(name) else {
                continue;
            };
            ctx.add_rule_conditional(act, call, &conds)
                .map_err(|err| e("add a rule", err))?;
        }
    }
    let mut out = nix::sys::memfd::memfd_create(
        c"hush-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map(std::fs::File::from)
    .map_err(|err| Error::Seccomp(format!("failed to create a memfd: {err}")))?;
    ctx.export_bpf(&out)
        .map_err(|err| e("export the filter", err))?;
    let mut bpf = Vec::new();
    std::io::Seek::rewind(&mut out)
        .and_then(|_| std::io::Read::read_to_end(&mut out, &mut bpf))
        .map_err(|err| Error::Seccomp(err.to_string()))?;
    Ok(bpf)
}

/// Load a filter made by [`compile`] into the calling thread, after setting `no_new_privs`
/// (which loading a filter without CAP_SYS_ADMIN requires). Async-signal-safe: system calls
/// only.
pub fn load(bpf: &[u8]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: (bpf.len() / std::mem::size_of::<libc::sock_filter>()) as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl and seccomp take these plain arguments; `prog` points into `bpf`, which
    // outlives the call, and the kernel copies the program.
    let r = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            -1
        } else {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ) as i32
        }
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    fn docker_caps() -> HashSet<Capability> {
        [Capability::Chown, Capability::SysChroot, Capability::Mknod]
            .into_iter()
            .collect()
    }

    #[test]
    fn no_rule_depends_on_net_raw() {
        // A root RUN's filter is compiled once for docker's set; the private network takes
        // NET_RAW away per RUN, which only holds if no rule depends on it.
        assert!(rules()
            .iter()
            .all(|r| r.caps.iter().all(|(_, c)| *c != Capability::NetRaw)));
    }

    #[test]
    fn the_built_in_policy_parses() {
        let r = parse(POLICY).unwrap();
        assert!(r.len() > 50);
        assert!(r.iter().map(|r| r.names.len()).sum::<usize>() > 380);
    }

    #[test]
    fn without_sys_admin_namespaces_mounts_and_keyrings_are_refused() {
        let p = profile_for(rules(), &docker_caps(), "x86_64").unwrap();
        for denied in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "bpf",
            "keyctl",
            "add_key",
            "request_key",
            "init_module",
            "reboot",
            "ptrace_nope",
        ] {
            let rules = allowed(&p, denied);
            assert!(rules.is_empty(), "{denied} allowed: {rules:?}");
        }
        // clone only without namespace flags; clone3 answers ENOSYS so libc falls back.
        let clone = allowed(&p, "clone");
        assert_eq!(clone.len(), 1);
        let arg = &clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two()),
            (0, 0, Some(0x7E02_0000))
        );
        assert_eq!(allowed(&p, "clone3")[0].errno_ret(), Some(38));
        // chroot with CAP_SYS_CHROOT, which docker's set holds.
        assert!(!allowed(&p, "chroot").is_empty());
        assert!(!allowed(&p, "arch_prctl").is_empty());
        assert!(allowed(&p, "cacheflush").is_empty());
        assert_eq!(p.default_errno_ret(), Some(EPERM));
    }

    #[test]
    fn with_sys_admin_namespaces_are_allowed() {
        let mut caps = docker_caps();
        caps.insert(Capability::SysAdmin);
        let p = profile_for(rules(), &caps, "x86_64").unwrap();
        assert!(!allowed(&p, "unshare").is_empty());
        let clone = allowed(&p, "clone");
        assert!(clone.iter().any(|s| s.args().is_none()));
        assert!(allowed(&p, "clone3")
            .iter()
            .all(|s| s.errno_ret().is_none()));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, what) in [
            ("allow unshare", "expected"),
            ("permit : read", "unknown action"),
            ("allow cap=CAP_NOPE : read", "unknown capability"),
            ("allow arg0<5 : read", "unknown comparison"),
            ("allow : ", "expected"),
        ] {
            let e = parse(&format!("# c\n{text}\n")).unwrap_err().to_string();
            assert!(e.contains("default.policy:2") && e.contains(what), "{e}");
        }
    }
}
