//! Who holds a lease: enough about this process for another process on the
//! same machine to tell, after a crash, that the holder is gone.
//!
//! A lease otherwise lasts until it expires (`sync.lease_secs`), which is
//! what a replica on another machine must wait for. But the common crash is
//! a single instance killed and restarted by systemd on the same machine: it
//! should not sit out its own dead predecessor's lease. A holder is written
//! as `host/pid/uid/pidns/start`: the host name, the process id and user id,
//! the pid namespace and the process's start time in clock ticks since boot.
//! A process of the same host, user and namespace can look the pid up in
//! `/proc` (a user's own processes are visible even under `hidepid` and
//! systemd's `ProtectProc=invisible`): if `/proc/PID` does not exist, or
//! holds a process that started at another moment (the pid was reused, or
//! the machine rebooted), the holder is dead and its lease can be taken over
//! at once. Anything else (another machine, user or container, a `/proc`
//! that cannot be read, a holder written some other way) is judged alive
//! until the lease expires.
//!
//! Only what systemd's `ProcSubset=pid` leaves visible is read: the process
//! directories, and the host name from `/etc/hostname` where
//! `/proc/sys/kernel/hostname` is hidden.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

/// A lease holder's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    host: String,
    pid: u32,
    uid: u32,
    pidns: String,
    start: u64,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Holder {
            host,
            pid,
            uid,
            pidns,
            start,
        } = self;
        write!(f, "{host}/{pid}/{uid}/{pidns}/{start}")
    }
}

impl Holder {
    /// This process, read once. Where something cannot be read, a value
    /// no other process shares, so that nobody judges this one.
    pub fn this_process() -> &'static Holder {
        static ME: OnceLock<Holder> = OnceLock::new();
        ME.get_or_init(|| {
            let unknown = || format!("unknown-{:016x}", fastrand::u64(..));
            Holder {
                host: read_name("/proc/sys/kernel/hostname")
                    .or_else(|| read_name("/etc/hostname"))
                    .unwrap_or_else(unknown),
                pid: std::process::id(),
                uid: std::fs::metadata("/proc/self")
                    .map(|m| m.uid())
                    .unwrap_or(u32::MAX),
                pidns: pid_namespace().unwrap_or_else(unknown),
                start: match start_ticks(std::process::id()) {
                    Ok(Some(t)) => t,
                    _ => 0,
                },
            }
        })
    }

    /// Reads a holder back; `None` for one written some other way.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split('/');
        let holder = Holder {
            host: parts.next()?.to_owned(),
            pid: parts.next()?.parse().ok()?,
            uid: parts.next()?.parse().ok()?,
            pidns: parts.next()?.to_owned(),
            start: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(holder)
    }

    /// Whether `other` is a process of this machine, user and pid namespace
    /// that no longer runs. Only then is the answer yes.
    pub fn is_gone(&self, other: &str) -> bool {
        let Some(other) = Holder::parse(other) else {
            return false;
        };
        if other == *self
            || other.host != self.host
            || other.uid != self.uid
            || other.pidns != self.pidns
            || self.host.starts_with("unknown-")
            || self.pidns.starts_with("unknown-")
        {
            return false;
        }
        match start_ticks(other.pid) {
            Ok(None) => true,
            // The pid may have been reused since: the start time tells.
            Ok(Some(start)) => start != other.start,
            Err(()) => false,
        }
    }
}

fn read_name(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty() && !text.contains('/')).then(|| text.to_owned())
}

fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    // "pid:[4026531836]"
    let text = link.to_str()?;
    let inode = text.strip_prefix("pid:[")?.strip_suffix(']')?;
    inode.parse::<u64>().ok().map(|n| n.to_string())
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks
/// after boot; `None` when no such process exists, an error when that
/// cannot be told. The command name (field 2) may hold spaces and
/// brackets, so the fields are counted from the last `)`.
fn start_ticks(pid: u32) -> Result<Option<u64>, ()> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    let rest = &stat[stat.rfind(')').ok_or(())? + 1..];
    let start = rest.split_whitespace().nth(19).ok_or(())?;
    start.parse().map(Some).map_err(|_| ())
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
        let start = start_ticks(pid).unwrap().unwrap();
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
        // Dead, but on another host, of another user or in another
        // namespace: not for us to judge.
        for other in [
            Holder {
                host: "elsewhere".into(),
                ..dead.clone()
            },
            Holder {
                uid: me.uid.wrapping_add(1),
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
