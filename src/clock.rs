//! The clock is a parameter: stages ask a [`Clock`] for the time, so tests
//! can fix it and replays can run as of any day. This is the only module
//! that reads the wall clock (`clippy.toml` bans it everywhere else).

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one reading of the wall clock the ban in clippy.toml allows.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that always says the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// An instant as liankong writes it in what it sends: RFC 3339 in UTC with
/// `Z`, with fractional seconds only when it has them.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clippy_bans_the_wall_clock_outside_this_module() {
        let config: toml::Table = toml::from_str(include_str!("../clippy.toml")).unwrap();
        let banned: Vec<&str> = config["disallowed-methods"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m.get("path")?.as_str())
            .collect();
        for path in ["chrono::Utc::now", "std::time::SystemTime::now"] {
            assert!(banned.contains(&path), "{path} is not banned: {banned:?}");
        }
    }
}
