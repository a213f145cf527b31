//! What the daemon tells systemd: readiness, reloading, stopping, and the
//! watchdog's pets, over `NOTIFY_SOCKET` without ever blocking a runtime
//! thread.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Tells systemd (when it started us with `NOTIFY_SOCKET`) how we are.
///
/// The datagram is sent without ever blocking a runtime thread (the
/// `sd_notify` crate's own send blocks): a service manager slow to read its
/// socket, whose queue holds only a few datagrams, delays this message by at
/// most `patience` and never stalls the adapters, the API or the delivery.
async fn notify(states: &[sd_notify::NotifyState<'_>], patience: Duration) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    let send = async { notify_socket(&path)?.send(message.as_bytes()).await };
    tokio::time::timeout(patience, send).await.map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "systemd's notify socket stayed full",
        )
    })??;
    Ok(())
}

/// How long a change of state waits for room on systemd's socket.
const NOTIFY_PATIENCE: Duration = Duration::from_secs(10);

pub(super) async fn notify_state(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = notify(states, NOTIFY_PATIENCE).await {
        let states: Vec<String> = states.iter().map(ToString::to_string).collect();
        tracing::warn!(error = %e, states = states.join(" "), "cannot notify systemd");
    }
}

/// A non-blocking datagram socket connected to `NOTIFY_SOCKET`: a path, or
/// an abstract name when it starts with `@`.
fn notify_socket(path: &std::ffi::OsStr) -> std::io::Result<tokio::net::UnixDatagram> {
    use std::os::unix::ffi::OsStrExt;
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            socket.connect_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)?;
        }
        None => socket.connect(path)?,
    }
    socket.set_nonblocking(true)?;
    tokio::net::UnixDatagram::from_std(socket)
}

/// Pets systemd's watchdog at half its interval until `stop`. A pet that
/// finds no room is skipped; the next one follows at half the interval.
pub(super) async fn pet_watchdog(interval: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = notify(&[sd_notify::NotifyState::Watchdog], interval / 2).await {
                    tracing::debug!(error = %e, "watchdog pet not sent");
                }
            }
        }
    }
}
