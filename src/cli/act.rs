//! `liankong act KIND …` and `liankong actions list`: taking an action from
//! the command line as an agency, with the same refusals as the API.

use std::io::Write;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use crate::action::{self, ActionRequest, Actor, TakeError};
use crate::clock::Clock;
use crate::deliver::Subscriber;
use crate::model::{ActionKind, Agency};
use crate::store::Store;

/// The token name the command line records: an operator at the store's
/// machine holds no API token.
pub const CLI_TOKEN: &str = "cli";

/// `liankong act KIND …`.
#[derive(Debug, Args)]
pub struct ActArgs {
    /// warn, freeze, unfreeze, reclaim, revive or withdraw.
    pub kind: ActionKind,
    /// The agency taking it.
    #[arg(long)]
    pub agency: Agency,
    /// The person taking it.
    #[arg(long)]
    pub by: String,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub year: Option<i32>,
    /// The day it was taken (YYYY-MM-DD); today (China time) by default.
    #[arg(long)]
    pub taken_on: Option<NaiveDate>,
    /// warn: the alert's id.
    #[arg(long)]
    pub alert: Option<String>,
    /// reclaim, revive: yuan, e.g. 120000.00.
    #[arg(long)]
    pub amount: Option<String>,
    /// revive: the reclaims it draws on, comma-separated, in order.
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<String>,
    /// freeze, unfreeze: the day it takes effect (the day taken by default).
    #[arg(long)]
    pub effective_on: Option<NaiveDate>,
    /// warn: the day the unit must answer by.
    #[arg(long)]
    pub deadline: Option<NaiveDate>,
    /// withdraw: the action it takes back.
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long)]
    pub reason: String,
}

impl ActArgs {
    fn request(&self) -> ActionRequest {
        ActionRequest {
            kind: self.kind,
            by: self.by.clone(),
            project: self.project.clone(),
            year: self.year,
            taken_on: self.taken_on,
            alert: self.alert.clone(),
            amount: self.amount.clone(),
            from: (!self.from.is_empty()).then(|| self.from.clone()),
            effective_on: self.effective_on,
            deadline: self.deadline,
            action: self.action.clone(),
            reason: self.reason.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ActionsCommand {
    /// The actions one agency may see, in the order taken, as JSON lines.
    List {
        #[arg(long)]
        agency: Agency,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        kind: Option<ActionKind>,
        #[arg(long)]
        year: Option<i32>,
    },
}

/// Takes the action: `action ID recorded` first on success; a refusal is
/// its status, reason and figures on stderr, exit 1.
pub async fn act(
    out: &mut dyn Write,
    store: &dyn Store,
    subscribers: &[Subscriber],
    clock: &dyn Clock,
    args: ActArgs,
) -> anyhow::Result<ExitCode> {
    let actor = Actor {
        agency: args.agency,
        token: CLI_TOKEN.to_owned(),
    };
    match action::take(
        store,
        subscribers,
        &actor,
        &args.request(),
        None,
        clock.now(),
    )
    .await
    {
        Ok(taken) => {
            writeln!(out, "action {} recorded", taken.action_id)?;
            writeln!(out, "{}", serde_json::to_string_pretty(&taken.answer)?)?;
            writeln!(out, "{} events queued", taken.events)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(TakeError::Refused(r)) => {
            eprintln!(
                "liankong: refused ({} {}): {}",
                r.status.code(),
                r.reason,
                r.message
            );
            eprintln!("figures: {}", r.figures);
            Ok(ExitCode::from(1))
        }
        Err(TakeError::Store(e)) => Err(e.into()),
    }
}

pub async fn actions(
    out: &mut dyn Write,
    store: &dyn Store,
    command: ActionsCommand,
) -> anyhow::Result<ExitCode> {
    let ActionsCommand::List {
        agency,
        project,
        kind,
        year,
    } = command;
    for a in action::visible(store, agency, project.as_deref(), kind, year).await? {
        writeln!(out, "{}", serde_json::to_string(&a)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
