//! The registry: the one list of rules. Each entry names a rule's id (its
//! [`RuleId`] variant and its `RULES.md` id), its field in the config and
//! its settings type, which is also the rule ([`Rule`]: what it reads and
//! how it judges). From this list come the ids, the `[rules."…"]` sections
//! of the config, the order findings sort in, the evaluation's dispatch and
//! the check of recipients; the entry's doc comment documents the variant
//! and the config field alike.
//!
//! Adding a rule is one entry here and its family's settings, `Rule` impl
//! and judging (plus, if it needs a new sum, a [`FactStore`] method and its
//! SQL); `config/liankong.toml` shows its section (a test holds them
//! together).
//!
//! [`FactStore`]: crate::store::facts::FactStore

use serde::Deserialize;

use super::rule::{Registered, Rule};
use super::rules::*;
use crate::model::Agency;

/// Declares the registry: [`RuleId`], [`RulesConfig`] and the rules in
/// their order.
macro_rules! registry {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal, $field:ident: $settings:ty;
    )+) => {
        /// The rules of `RULES.md`, in registry order (findings sort by it).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId {
            $( $(#[$doc])* $variant, )+
        }

        impl RuleId {
            pub const ALL: [RuleId; [$($name),+].len()] = [$(RuleId::$variant),+];

            /// The id of `RULES.md`, as the config, the API and webhooks spell it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( RuleId::$variant => $name, )+
                }
            }

            pub fn parse(s: &str) -> Option<RuleId> {
                RuleId::ALL.into_iter().find(|r| r.as_str() == s)
            }
        }

        /// Every rule's settings: `[rules."rule.id"]` in the config.
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RulesConfig {
            $(
                $(#[$doc])*
                #[serde(rename = $name, default)]
                pub $field: $settings,
            )+
        }

        impl RulesConfig {
            /// Every rule, with its settings, in registry order.
            pub fn rules(&self) -> [&dyn Rule; RuleId::ALL.len()] {
                [$(&self.$field),+]
            }
        }

        $(
            impl Registered for $settings {
                fn id(&self) -> RuleId {
                    RuleId::$variant
                }
            }
        )+
    };
}

registry! {
    /// npc's approved budget of a project-year against finance's quota.
    ApprovedMismatch = "budget.approved_mismatch", approved_mismatch: budget::ApprovedMismatch;
    /// What finance reports to the congress as spent against its payments.
    MirrorMismatch = "execution.mirror_mismatch", mirror_mismatch: execution::MirrorMismatch;
    /// Execution progress behind time progress.
    Slow = "execution.slow", slow: execution::Slow;
    /// A balance without expenditure for months.
    Idle = "funds.idle", idle: funds::Idle;
    /// A large full-year quota paid out in too few tranches.
    LumpSum = "disbursement.lump_sum", lump_sum: disbursement::LumpSum;
    /// A tranche not spent within the settle period.
    TrancheUnsettled = "disbursement.tranche_unsettled", tranche_unsettled: disbursement::TrancheUnsettled;
    /// A special fund without a performance target.
    TargetMissing = "target.missing", target_missing: target::TargetMissing;
    /// A poor evaluation last year without a cut this year.
    ResultUnapplied = "evaluation.result_unapplied", result_unapplied: evaluation::ResultUnapplied;
    /// A rectification finance recorded that audit's ledger does not show.
    StatusMismatch = "audit.status_mismatch", status_mismatch: audit::StatusMismatch;
    /// An audit finding not rectified by its deadline.
    Overdue = "audit.overdue", overdue: audit::Overdue;
    /// A payment on a project discipline froze (confidential).
    FreezeBreach = "referral.freeze_breach", freeze_breach: referral::FreezeBreach;
    /// A unit's reported execution rate against finance's figures.
    RateMismatch = "orgdept.rate_mismatch", rate_mismatch: orgdept::RateMismatch;
    /// Money the year's pace will leave unspent.
    Unspendable = "yearend.unspendable", unspendable: yearend::Unspendable;
    /// Payments beyond the quota.
    OverQuota = "payment.over_quota", over_quota: payment::OverQuota;
    /// A record naming a project finance never sent.
    UnknownProject = "link.unknown_project", unknown_project: link::UnknownProject;
    /// An audit unit name that matches no finance unit.
    UnresolvedUnit = "link.unresolved_unit", unresolved_unit: link::UnresolvedUnit;
    /// A payment inside the breach window of finance's freeze action.
    ActionFreezeBreach = "action.freeze_breach", action_freeze_breach: action::FreezeBreach;
    /// A reclaim action finance's quota rows do not show after the grace days.
    ReclaimUnapplied = "action.reclaim_unapplied", reclaim_unapplied: action::ReclaimUnapplied;
    /// A revive action finance's adjustments do not show after the grace days.
    ReviveUnapplied = "action.revive_unapplied", revive_unapplied: action::ReviveUnapplied;
    /// A warning past its deadline whose alert still fires.
    WarnUnanswered = "action.warn_unanswered", warn_unanswered: action::WarnUnanswered;
}

/// A configured recipient a confidential rule may not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rules.\"{rule}\": {agency} may not receive discipline data ({allowed})")]
pub struct RecipientError {
    pub rule: RuleId,
    pub agency: Agency,
    pub allowed: &'static str,
}

/// Who may receive each rule's findings when the config overrides
/// recipients: a confidential rule never beyond `RULES.md`.
pub fn check_recipients(rules: &RulesConfig) -> Result<(), RecipientError> {
    for rule in rules.rules() {
        let (Some(allowed), Some(recipients)) = (rule.allowed(), rule.recipients()) else {
            continue;
        };
        if let Some(bad) = recipients.iter().find(|a| !allowed.agencies.contains(a)) {
            return Err(RecipientError {
                rule: rule.id(),
                agency: *bad,
                allowed: allowed.described,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../config/liankong.toml");

    #[test]
    fn the_shipped_config_shows_every_rule_with_its_defaults_in_registry_order() {
        let sections: Vec<&str> = SHIPPED
            .lines()
            .filter_map(|l| l.strip_prefix("[rules.\"")?.strip_suffix("\"]"))
            .collect();
        let ids: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(sections, ids);
        let shipped = crate::config::Config::parse(SHIPPED).unwrap().rules;
        assert_eq!(shipped, RulesConfig::default());
    }

    #[test]
    fn ids_and_rules_follow_the_registry() {
        let config = RulesConfig::default();
        let ids: Vec<RuleId> = config.rules().iter().map(|r| r.id()).collect();
        assert_eq!(ids, RuleId::ALL);
        assert_eq!(RuleId::parse("audit.overdue"), Some(RuleId::Overdue));
        assert_eq!(RuleId::parse("audit"), None);
    }

    #[test]
    fn a_confidential_rule_goes_nowhere_its_rule_forbids() {
        let mut config = RulesConfig::default();
        config.freeze_breach.recipients = Some(vec![Agency::Finance, Agency::Npc]);
        assert_eq!(
            check_recipients(&config).unwrap_err().to_string(),
            "rules.\"referral.freeze_breach\": npc may not receive discipline data (only discipline, and finance redacted)"
        );
        config.freeze_breach.recipients = Some(vec![Agency::Discipline]);
        config.overdue.recipients = Some(vec![Agency::Npc]);
        assert_eq!(check_recipients(&config), Ok(()));
    }
}
