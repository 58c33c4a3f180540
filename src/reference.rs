//! The API reference (docs/reference.md) rendered from what the API server and the
//! operator use: every CRD's schema with its `kubectl explain` text, printer columns and
//! validation rules, then every condition type, condition reason, failure category and Event
//! reason. Pure: `make reference` writes it, and a test fails when the committed file lags.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};

use crate::crd::definitions;
use crate::failure::Category;
use crate::reconciler::core::conditions::{ConditionType, Reason};
use crate::reconciler::core::events::EventReason;
use crate::reconciler::core::set::{SetEventReason, SetReason};

/// Where `make reference` writes it, relative to the package root.
pub const PATH: &str = "docs/reference.md";

/// The whole reference as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# API reference\n\n\
         Generated from the operator's types by `make reference`; a test fails when this file \
         lags behind them. Field descriptions are what `kubectl explain` prints.\n\n",
    );
    let crds = definitions();
    out.push_str("Kinds:");
    for crd in &crds {
        let kind = &crd.spec.names.kind;
        let _ = write!(out, " [{kind}](#{}),", kind.to_lowercase());
    }
    out.pop();
    out.push_str(
        ". Then: [conditions](#conditions), [condition reasons](#condition-reasons), \
         [failure categories](#failure-categories), \
         [UpgradeWatchSet reasons](#upgradewatchset-reasons), [Event reasons](#event-reasons).\n",
    );
    for crd in &crds {
        kind_section(&mut out, crd);
    }
    reasons_sections(&mut out);
    out
}

fn kind_section(out: &mut String, crd: &CustomResourceDefinition) {
    let names = &crd.spec.names;
    let Some(version) = crd.spec.versions.first() else {
        return;
    };
    let _ = write!(
        out,
        "\n## {}\n\n`{}/{}`, {}",
        names.kind,
        crd.spec.group,
        version.name,
        crd.spec.scope.to_lowercase()
    );
    if let Some(short) = names.short_names.as_ref().filter(|s| !s.is_empty()) {
        let _ = write!(out, ", short name {}", code_list(short));
    }
    if let Some(categories) = names.categories.as_ref().filter(|c| !c.is_empty()) {
        let _ = write!(out, ", category {}", code_list(categories));
    }
    out.push_str(".\n");
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    if let Some(description) = schema.and_then(|s| s.description.as_deref()) {
        let _ = write!(out, "\n{description}\n");
    }
    columns(
        out,
        version.additional_printer_columns.as_deref().unwrap_or(&[]),
    );
    let Some(props) = schema.and_then(|s| s.properties.as_ref()) else {
        return;
    };
    for part in ["spec", "status"] {
        let Some(schema) = props.get(part) else {
            continue;
        };
        let _ = write!(
            out,
            "\n### {}\n\n| Field | Type | Description |\n| --- | --- | --- |\n",
            part
        );
        let mut rules = Vec::new();
        fields(out, &mut rules, part, schema, false);
        if !rules.is_empty() {
            let _ = write!(
                out,
                "\nRules the API server enforces on `{part}` (CEL):\n\n| Where | Rule | Message |\n| --- | --- | --- |\n"
            );
            for (at, rule, message) in rules {
                let _ = writeln!(out, "| `{at}` | `{}` | {} |", cell(&rule), cell(&message));
            }
        }
    }
}

fn columns(
    out: &mut String,
    columns: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition],
) {
    if columns.is_empty() {
        return;
    }
    out.push_str(
        "\n### Columns of `kubectl get`\n\n| Column | Shown | Value | Meaning |\n| --- | --- | --- | --- |\n",
    );
    for c in columns {
        let shown = if c.priority.unwrap_or(0) == 0 {
            "always"
        } else {
            "`-o wide`"
        };
        let _ = writeln!(
            out,
            "| {} | {shown} | `{}` | {} |",
            c.name.to_uppercase(),
            cell(&c.json_path),
            cell(c.description.as_deref().unwrap_or(""))
        );
    }
}

/// One row per field under `schema`, depth first in name order; CEL rules collected.
fn fields(
    out: &mut String,
    rules: &mut Vec<(String, String, String)>,
    path: &str,
    schema: &JSONSchemaProps,
    required: bool,
) {
    if path.contains('.') || path.ends_with("[]") {
        let _ = writeln!(
            out,
            "| `{path}` | {} | {} |",
            type_of(schema, required),
            cell(&describe(schema))
        );
    }
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        rules.push((
            path.to_string(),
            rule.rule.clone(),
            rule.message.clone().unwrap_or_default(),
        ));
    }
    let required_here: Vec<&String> = schema.required.iter().flatten().collect();
    let children: BTreeMap<&String, &JSONSchemaProps> =
        schema.properties.iter().flatten().collect();
    for (name, child) in children {
        let child_required = required_here.contains(&name);
        fields(out, rules, &format!("{path}.{name}"), child, child_required);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items
        && items.properties.as_ref().is_some_and(|p| !p.is_empty())
    {
        let item_path = format!("{path}[]");
        for rule in items.x_kubernetes_validations.iter().flatten() {
            rules.push((
                item_path.clone(),
                rule.rule.clone(),
                rule.message.clone().unwrap_or_default(),
            ));
        }
        let required_here: Vec<&String> = items.required.iter().flatten().collect();
        let children: BTreeMap<&String, &JSONSchemaProps> =
            items.properties.iter().flatten().collect();
        for (name, child) in children {
            let child_required = required_here.contains(&name);
            fields(
                out,
                rules,
                &format!("{item_path}.{name}"),
                child,
                child_required,
            );
        }
    }
}

/// `string`, `[]object`, `map[string]string`, ..., and whether it is required.
fn type_of(schema: &JSONSchemaProps, required: bool) -> String {
    let base = |s: &JSONSchemaProps| -> String {
        match s.type_.as_deref() {
            Some("object") if s.properties.is_none() && s.additional_properties.is_some() => {
                "map[string]string".into()
            }
            Some(t) => t.into(),
            None if s.x_kubernetes_int_or_string == Some(true) => "int or string".into(),
            None => "any".into(),
        }
    };
    let mut text = match (&schema.type_.as_deref(), &schema.items) {
        (Some("array"), Some(JSONSchemaPropsOrArray::Schema(items))) => {
            format!("[]{}", base(items))
        }
        _ => base(schema),
    };
    if required {
        text.push_str(", required");
    }
    text
}

/// The description, then the constraints the schema states.
fn describe(schema: &JSONSchemaProps) -> String {
    let mut text = schema.description.clone().unwrap_or_default();
    let mut limits = Vec::new();
    if let Some(values) = &schema.enum_ {
        let values: Vec<String> = values.iter().map(|v| v.0.to_string()).collect();
        limits.push(format!("one of {}", values.join(", ")));
    }
    if let Some(default) = &schema.default {
        limits.push(format!("default {}", default.0));
    }
    if let Some(min) = schema.minimum {
        limits.push(format!("at least {min}"));
    }
    if let Some(max) = schema.maximum {
        limits.push(format!("at most {max}"));
    }
    if let Some(max) = schema.max_length {
        limits.push(format!("at most {max} characters"));
    }
    if let Some(max) = schema.max_items {
        limits.push(format!("at most {max} items"));
    }
    if let Some(pattern) = &schema.pattern {
        limits.push(format!("matches `{pattern}`"));
    }
    if !limits.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        let _ = write!(text, "({})", limits.join("; "));
    }
    text
}

fn reasons_sections(out: &mut String) {
    out.push_str(
        "\n## Conditions\n\nAn UpgradeWorkflowWatch's `status.conditions` (kstatus types plus \
         Synced); an account's carry Ready (its credentials can be obtained) and Synced.\n\n\
         | Type | Meaning |\n| --- | --- |\n",
    );
    for type_ in ConditionType::ALL {
        let _ = writeln!(out, "| `{}` | {} |", type_.as_str(), cell(type_.meaning()));
    }
    out.push_str("\n## Condition reasons\n\n| Reason | Meaning |\n| --- | --- |\n");
    for reason in Reason::STATES {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            reason.as_str(),
            cell(reason.meaning())
        );
    }
    out.push_str(
        "\n## Failure categories\n\nThe reason of Synced (and of Stalled for a permanent \
         failure, and of Ready before the upgrade succeeded) when CCE, IAM or the account \
         cannot be read; also the `category` label of the failure metrics.\n\n\
         | Category | Meaning |\n| --- | --- |\n",
    );
    for category in Category::ALL {
        let _ = writeln!(out, "| `{category}` | {} |", cell(category.meaning()));
    }
    out.push_str(
        "\n## UpgradeWatchSet reasons\n\nAn UpgradeWatchSet's Ready and Synced; a listing \
         that fails carries the failure category.\n\n| Reason | Meaning |\n| --- | --- |\n",
    );
    for reason in SetReason::STATES {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            reason.as_str(),
            cell(reason.meaning())
        );
    }
    out.push_str("\n## Event reasons\n\n| Reason | Type and when |\n| --- | --- |\n");
    for reason in EventReason::ALL {
        let _ = writeln!(out, "| `{reason}` | {} |", cell(reason.when()));
    }
    for reason in SetEventReason::ALL {
        let _ = writeln!(
            out,
            "| `{}` | {} (about an UpgradeWatchSet) |",
            reason.as_str(),
            cell(reason.when())
        );
    }
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_reference_is_what_the_types_say() {
        let root = env!("CARGO_MANIFEST_DIR");
        let committed = std::fs::read_to_string(format!("{root}/{PATH}")).unwrap_or_default();
        assert!(
            committed == markdown(),
            "{PATH} is out of date with the types: run `make reference` and commit the result"
        );
    }

    #[test]
    fn every_field_column_rule_and_reason_is_in_it() {
        let text = markdown();
        for needle in [
            "## UpgradeWorkflowWatch",
            "## CCEAccount",
            "## ClusterCCEAccount",
            "| `spec.accountRef.name` |",
            "| `status.conditions[].reason` |",
            "| `status.tasks[].upgradeTaskPhase` |",
            "| REASON | always |",
            "| MESSAGE | `-o wide` |",
            "| `UpgradeSucceeded` |",
            "| `ClusterMismatch` |",
            "| `TaskDiagnosed` |",
            "| `ClusterJoined` |",
            "| `AtMaxWatches` |",
            "## UpgradeWatchSet",
            "| `Stalled` |",
            "has(self.accountRef)",
        ] {
            assert!(text.contains(needle), "the reference lacks {needle}");
        }
        for crd in definitions() {
            let version = &crd.spec.versions[0];
            for column in version.additional_printer_columns.iter().flatten() {
                assert!(text.contains(&format!("`{}`", cell(&column.json_path))));
            }
        }
        for reason in Reason::STATES {
            assert!(text.contains(&format!("| `{}` |", reason.as_str())));
        }
        for category in Category::ALL {
            assert!(text.contains(&format!("| `{category}` |")));
        }
        for reason in EventReason::ALL {
            assert!(text.contains(&format!("| `{reason}` |")));
        }
    }

    #[test]
    fn every_printer_column_says_what_it_shows() {
        for crd in definitions() {
            for column in crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
            {
                assert!(
                    column.description.as_deref().is_some_and(|d| !d.is_empty()),
                    "{} column {} has no description",
                    crd.spec.names.kind,
                    column.name
                );
            }
        }
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
