//! The running simulator: generates the dataset, writes the PKI and the
//! exchange files under its directory, and serves finance and npc over plain
//! HTTP and discipline over mutual TLS on loopback, each as a tokio task that
//! stops on [`Simulator::shutdown`] (or, best effort, when dropped).
//!
//! Its directory holds `audit/`, `orgdept/` and `pki/` (`ca.pem`,
//! `client.pem`, `client.key`): what a daemon config points at.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use chrono::NaiveDate;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::data::{SimData, SimDataHandle};
use super::error::SimError;
use super::faults::{self, FaultHandle, Faults, Guard, RequestLog, RequestRecord};
use super::files;
use super::generate::{Dataset, GenParams, generate};
use super::pki::Pki;
use super::{discipline, finance, npc};
use crate::model::{AuditFinding, OrgdeptEvaluation};

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub params: GenParams,
    /// Where the exchange files and the PKI go; created if missing.
    pub dir: PathBuf,
    /// 0 picks a free port.
    pub finance_port: u16,
    pub npc_port: u16,
    pub discipline_port: u16,
}

impl SimOptions {
    /// Ephemeral ports for every server.
    pub fn new(params: GenParams, dir: impl Into<PathBuf>) -> SimOptions {
        SimOptions {
            params,
            dir: dir.into(),
            finance_port: 0,
            npc_port: 0,
            discipline_port: 0,
        }
    }
}

/// How long shutdown waits for a server before aborting it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A running simulator of the five systems.
#[derive(Debug)]
pub struct Simulator {
    params: GenParams,
    dir: PathBuf,
    finance_addr: SocketAddr,
    npc_addr: SocketAddr,
    discipline_addr: SocketAddr,
    pki: Pki,
    data: SimDataHandle,
    faults: FaultHandle,
    log: RequestLog,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulator {
    /// Generates the dataset from `options.params` and starts everything.
    pub async fn start(options: SimOptions) -> Result<Simulator, SimError> {
        let params = options.params.clone();
        let dataset = tokio::task::spawn_blocking(move || generate(&params))
            .await
            .map_err(|e| SimError::Task(e.to_string()))?;
        Simulator::start_with(options, dataset).await
    }

    /// Starts with a dataset the caller built; `options.params` still gives
    /// the as-of date (the audit file's name) and the fault seed.
    pub async fn start_with(options: SimOptions, dataset: Dataset) -> Result<Simulator, SimError> {
        let pki = Pki::generate()?;
        let dir = options.dir.clone();
        let pki_dir = dir.join("pki");
        std::fs::create_dir_all(&pki_dir).map_err(SimError::io(&pki_dir))?;
        for (name, pem) in [
            ("ca.pem", &pki.ca_cert_pem),
            ("client.pem", &pki.client_cert_pem),
            ("client.key", &pki.client_key_pem),
        ] {
            let path = pki_dir.join(name);
            std::fs::write(&path, pem).map_err(SimError::io(&path))?;
        }
        // A private key readable by all is one a careful client may refuse.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = pki_dir.join("client.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(SimError::io(&key))?;
        }

        let seed = options.params.seed;
        let data = SimDataHandle::new(SimData::new(dataset));
        let faults = FaultHandle::new(seed ^ 0xFA17);
        let log = RequestLog::default();
        let cancel = CancellationToken::new();
        let guard = |system: &'static str| Guard {
            system,
            faults: faults.clone(),
            log: log.clone(),
        };
        let with_guard = |router: Router, system: &'static str| {
            router.layer(axum::middleware::from_fn_with_state(
                guard(system),
                faults::guard,
            ))
        };

        let finance_listener = bind("finance", options.finance_port).await?;
        let npc_listener = bind("npc", options.npc_port).await?;
        let discipline_listener = bind("discipline", options.discipline_port).await?;
        let local = |system: &'static str, l: &TcpListener, port: u16| {
            l.local_addr().map_err(|source| SimError::Bind {
                system,
                port,
                source,
            })
        };
        let finance_addr = local("finance", &finance_listener, options.finance_port)?;
        let npc_addr = local("npc", &npc_listener, options.npc_port)?;
        let discipline_addr = local("discipline", &discipline_listener, options.discipline_port)?;
        let acceptor = discipline::tls_acceptor(&pki)?;

        let mut simulator = Simulator {
            params: options.params,
            dir,
            finance_addr,
            npc_addr,
            discipline_addr,
            pki,
            data: data.clone(),
            faults: faults.clone(),
            log: log.clone(),
            cancel: cancel.clone(),
            tasks: Vec::new(),
        };
        simulator.write_files()?;

        let finance_app = with_guard(
            finance::router(data.clone(), faults.clone(), seed ^ 0x70C3),
            "finance",
        );
        let npc_app = with_guard(npc::router(data.clone()), "npc");
        let discipline_app = with_guard(discipline::router(data), "discipline");
        simulator.tasks = vec![
            tokio::spawn(serve_plain(finance_listener, finance_app, cancel.clone())),
            tokio::spawn(serve_plain(npc_listener, npc_app, cancel.clone())),
            tokio::spawn(discipline::serve_tls(
                discipline_listener,
                acceptor,
                discipline_app,
                cancel,
            )),
        ];
        Ok(simulator)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn finance_url(&self) -> String {
        format!("http://{}", self.finance_addr)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn npc_url(&self) -> String {
        format!("http://{}", self.npc_addr)
    }

    /// `https://localhost:PORT`: the name the server certificate carries.
    pub fn discipline_url(&self) -> String {
        format!("https://localhost:{}", self.discipline_addr.port())
    }

    pub fn finance_addr(&self) -> SocketAddr {
        self.finance_addr
    }

    pub fn npc_addr(&self) -> SocketAddr {
        self.npc_addr
    }

    pub fn discipline_addr(&self) -> SocketAddr {
        self.discipline_addr
    }

    pub fn params(&self) -> &GenParams {
        &self.params
    }

    /// The simulator's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the audit office drops its snapshots.
    pub fn audit_dir(&self) -> PathBuf {
        self.dir.join("audit")
    }

    /// Where the organisation department drops its workbooks.
    pub fn orgdept_dir(&self) -> PathBuf {
        self.dir.join("orgdept")
    }

    /// Where `ca.pem`, `client.pem` and `client.key` are.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The live data; changes show on the next request, and in the files
    /// after [`Simulator::write_files`].
    pub fn data(&self) -> &SimDataHandle {
        &self.data
    }

    /// The live fault settings.
    pub fn faults(&self) -> &FaultHandle {
        &self.faults
    }

    /// Replaces every fault setting at once.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// Every request so far, in the order answered.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.log.all()
    }

    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// The request log itself, to share with other tasks.
    pub fn request_log(&self) -> &RequestLog {
        &self.log
    }

    /// (Re)writes the audit snapshot `audit_findings_<as_of>.csv` and one
    /// orgdept workbook per quarter present in the data. Workbooks of
    /// quarters no longer present are left as they are.
    pub fn write_files(&self) -> Result<(), SimError> {
        let (findings, orgdept) = {
            let data = self.data.read();
            (
                data.dataset().findings.clone(),
                data.dataset().orgdept.clone(),
            )
        };
        files::write_audit_file(
            &self.audit_dir(),
            &files::audit_file_name(self.params.as_of),
            &findings,
        )?;
        std::fs::create_dir_all(self.orgdept_dir()).map_err(SimError::io(self.orgdept_dir()))?;
        files::write_orgdept_files(&self.orgdept_dir(), &orgdept)?;
        Ok(())
    }

    /// Writes the current findings as the snapshot of `date`
    /// (`audit_findings_YYYYMMDD.csv`): a newer file for the reader to pick.
    pub fn write_audit_snapshot(&self, date: NaiveDate) -> Result<PathBuf, SimError> {
        let findings = self.data.read().dataset().findings.clone();
        files::write_audit_file(&self.audit_dir(), &files::audit_file_name(date), &findings)
    }

    /// Writes an audit snapshot under any name (an older one, say) into the
    /// audit directory.
    pub fn write_audit_file(
        &self,
        name: &str,
        findings: &[AuditFinding],
    ) -> Result<PathBuf, SimError> {
        files::write_audit_file(&self.audit_dir(), name, findings)
    }

    /// Leaves `name.part`, half written, in the audit directory.
    pub fn write_partial_audit_file(
        &self,
        name: &str,
        findings: &[AuditFinding],
    ) -> Result<PathBuf, SimError> {
        files::write_partial_audit_file(&self.audit_dir(), name, findings)
    }

    /// Writes a workbook under any name into the orgdept directory.
    pub fn write_orgdept_file(
        &self,
        name: &str,
        rows: &[OrgdeptEvaluation],
    ) -> Result<PathBuf, SimError> {
        files::write_orgdept_file(&self.orgdept_dir(), name, rows)
    }

    /// Stops every server and waits for them (aborting any that lingers).
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind(system: &'static str, port: u16) -> Result<TcpListener, SimError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SimError::Bind {
            system,
            port,
            source,
        })
}

/// Serves plain HTTP until cancelled.
async fn serve_plain(listener: TcpListener, app: Router, cancel: CancellationToken) {
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "simulated server stopped");
    }
}
