//! `link.*`: what the link step could not tie together: project codes
//! finance never sent, audit's unit names that match no finance unit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use super::shared::on_audit_finding;
use crate::model::{Agency, normalize_unit_name};
use crate::reconcile::config::rule_settings;
use crate::reconcile::finding::{Finding, RuleId, Severity, SourceRef, View};
use crate::reconcile::rule::{Facts, Rule};
use crate::store::StoreError;
use crate::store::facts::{FindingFact, UnknownProjectFact};

rule_settings! {
    /// `link.unknown_project`.
    UnknownProject {}
}

#[async_trait]
impl Rule for UnknownProject {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        Ok(unknown_project(&facts.store.unknown_projects().await?))
    }
}

rule_settings! {
    /// `link.unresolved_unit`.
    UnresolvedUnit {}
}

#[async_trait]
impl Rule for UnresolvedUnit {
    async fn judge(&self, facts: &Facts<'_>) -> Result<Vec<Finding>, StoreError> {
        Ok(unresolved_unit(facts.audit_findings().await?))
    }
}

/// `link.unknown_project`: one finding per source agency and project code.
/// A discipline record's finding goes to discipline alone.
pub fn unknown_project(rows: &[UnknownProjectFact]) -> Vec<Finding> {
    let rule = RuleId::UnknownProject;
    let mut groups: BTreeMap<(Agency, &str), Vec<&UnknownProjectFact>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.agency, &r.project_code))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((source, project), records) in groups {
        let agency = source.as_str();
        let mut recipients = vec![source];
        if source != Agency::Finance && source != Agency::Discipline {
            recipients.push(Agency::Finance);
        }
        let mut collections: Vec<&str> = records.iter().map(|r| r.collection.as_str()).collect();
        collections.dedup();
        let keys: Vec<&str> = records.iter().take(10).map(|r| r.key.as_str()).collect();
        out.push(Finding {
            rule,
            severity: Severity::Warning,
            recipients,
            unit_code: None,
            project_code: Some(project.to_owned()),
            confidential: source == Agency::Discipline,
            view: View {
                subject: json!({"rule": rule.as_str(), "agency": agency, "project": project}),
                summary: format!(
                    "{}系统有{}条记录引用项目编码{project}，但财政局从未报送该项目，请核对项目编码。",
                    agency_name(source),
                    records.len()
                ),
                facts: json!({
                    "project": project, "agency": agency, "records": records.len(),
                    "collections": collections, "keys": keys,
                }),
                sources: records
                    .iter()
                    .take(10)
                    .map(|r| SourceRef::new(source, &r.collection, &r.key))
                    .collect(),
            },
            redacted: None,
        });
    }
    out
}

fn agency_name(a: Agency) -> &'static str {
    match a {
        Agency::Npc => "人大预算联网监督",
        Agency::Finance => "财政预算管理一体化",
        Agency::Audit => "审计监督",
        Agency::Discipline => "纪检监察监督",
        Agency::Orgdept => "政府绩效考评",
    }
}

/// `link.unresolved_unit`.
pub fn unresolved_unit(findings: &[FindingFact]) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| f.unit_code.is_none())
        .map(|f| {
            on_audit_finding(
                RuleId::UnresolvedUnit,
                f,
                Severity::Warning,
                vec![Agency::Audit],
                format!(
                    "审计问题{}的被审计单位“{}”与财政单位名称无法对应，请审计局核对单位全称。",
                    f.finding_no, f.unit_name
                ),
                json!({
                    "finding_no": f.finding_no, "unit_name": f.unit_name,
                    "normalized_name": normalize_unit_name(&f.unit_name),
                }),
            )
        })
        .collect()
}
