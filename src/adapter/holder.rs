//! Who holds a lease: enough about this process for another process on the
//! same machine to tell, after a crash, that the holder is gone.
//!
//! A lease otherwise lasts until it expires (`sync.lease_secs`), which is
//! what a replica on another machine must wait for. But the common crash is
//! a single instance killed and restarted by systemd on the same machine: it
//! should not sit out its own dead predecessor's lease. A holder is written
//! as `host/pid/boot/pidns/start` — the host name, the process id, the
//! kernel's boot id, the pid namespace and the process's start time in clock
//! ticks since boot. A process that sees the same host, boot and namespace
//! can look the pid up in `/proc`: if no process with that pid and start time
//! is there, the holder is dead and its lease can be taken over at once.
//! Anything else (another machine, a rebooted one, another container, a
//! holder written some other way, a system without `/proc`) is judged alive
//! until the lease expires.

use std::fmt;
use std::sync::OnceLock;

/// A lease holder's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    host: String,
    pid: u32,
    boot: String,
    pidns: String,
    start: u64,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Holder {
            host,
            pid,
            boot,
            pidns,
            start,
        } = self;
        write!(f, "{host}/{pid}/{boot}/{pidns}/{start}")
    }
}

impl Holder {
    /// This process, read once.
    pub fn this_process() -> &'static Holder {
        static ME: OnceLock<Holder> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Holder {
                host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "host".into()),
                pid,
                boot: read_trimmed("/proc/sys/kernel/random/boot_id")
                    .map(|b| b.replace('-', ""))
                    // Without a boot id, a random one: never judged by others.
                    .unwrap_or_else(|| format!("r{:016x}", fastrand::u64(..))),
                pidns: pid_namespace("self").unwrap_or_else(|| "0".into()),
                start: start_ticks("self").unwrap_or(0),
            }
        })
    }

    /// Reads a holder back; `None` for one written some other way.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split('/');
        let holder = Holder {
            host: parts.next()?.to_owned(),
            pid: parts.next()?.parse().ok()?,
            boot: parts.next()?.to_owned(),
            pidns: parts.next()?.to_owned(),
            start: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(holder)
    }

    /// Whether `other` is a process of this machine, this boot and this pid
    /// namespace that no longer runs. Only then is the answer yes.
    pub fn is_gone(&self, other: &str) -> bool {
        let Some(other) = Holder::parse(other) else {
            return false;
        };
        if other == *self
            || other.host != self.host
            || other.boot != self.boot
            || other.pidns != self.pidns
        {
            return false;
        }
        // The pid may have been reused since: the start time tells.
        start_ticks(&other.pid.to_string()) != Some(other.start)
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty() && !text.contains('/')).then(|| text.to_owned())
}

fn pid_namespace(pid: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    // "pid:[4026531836]"
    let text = link.to_str()?;
    let inode = text.strip_prefix("pid:[")?.strip_suffix(']')?;
    inode.parse::<u64>().ok().map(|n| n.to_string())
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks
/// after boot. The command name (field 2) may hold spaces and brackets, so
/// the fields are counted from the last `)`.
fn start_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_back_as_written() {
        let me = Holder::this_process();
        let text = me.to_string();
        assert_eq!(Holder::parse(&text).as_ref(), Some(me));
        assert_eq!(text.split('/').count(), 5);
        for bad in ["replica-b", "a/1/b/c", "a/x/b/c/1", "a/1/b/c/1/extra", ""] {
            assert_eq!(Holder::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_dead_process_of_this_machine_is_gone() {
        let me = Holder::this_process();
        // This process, and holders written some other way: alive.
        assert!(!me.is_gone(&me.to_string()));
        assert!(!me.is_gone("replica-b"));
        // A child that ran and was reaped: gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder { pid, ..me.clone() };
        assert!(me.is_gone(&dead.to_string()));
        // A running process whose start time is not the holder's: the pid
        // was reused, so the holder is gone; with its own start time, alive.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleeper.id();
        let start = start_ticks(&pid.to_string()).unwrap();
        let alive = Holder {
            pid,
            start,
            ..me.clone()
        };
        assert!(!me.is_gone(&alive.to_string()));
        let reused = Holder {
            pid,
            start: start + 1,
            ..me.clone()
        };
        assert!(me.is_gone(&reused.to_string()));
        // Dead, but on another host, boot or namespace: not for us to judge.
        for other in [
            Holder {
                host: "elsewhere".into(),
                ..dead.clone()
            },
            Holder {
                boot: "0".into(),
                ..dead.clone()
            },
            Holder {
                pidns: "1".into(),
                ..dead.clone()
            },
        ] {
            assert!(!me.is_gone(&other.to_string()), "{other}");
        }
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
}
