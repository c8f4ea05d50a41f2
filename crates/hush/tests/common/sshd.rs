//! A real `ssh-agent` holding a fresh key and a real `sshd` on 127.0.0.1 that accepts only that
//! key (root may log in: it serves git repositories over ssh). Both stop when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::registry::sh;

/// A child killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ssh-agent -D` holding `dir/key` (made here, ed25519, no passphrase) at `dir/agent.sock`.
pub struct Agent {
    pub sock: PathBuf,
    _child: Killed,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        sh(
            "ssh-keygen -q -t ed25519 -N '' -C hush-test -f key && ssh-keygen -q -t ed25519 -N '' -f hostkey",
            dir,
        );
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        sh("SSH_AUTH_SOCK=$PWD/agent.sock ssh-add -q key", dir);
        Agent {
            sock,
            _child: Killed(child),
        }
    }
}

/// `sshd` on a free loopback port, with `dir/hostkey`, accepting only `dir/key.pub`.
pub struct Sshd {
    pub port: u16,
    _child: Killed,
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::copy(dir.join("key.pub"), dir.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile {0}/sshd.pid\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_for_port(port);
        Sshd {
            port,
            _child: Killed(child),
        }
    }
}
