//! A definition in words, line by line: what the generated documentation,
//! the side-by-side version diff and the evidence pack show. Every line
//! names a field or a rule, never a record's value.

use super::{Definition, Step, StepKind};
use crate::mapping::{Expr, Transform};
use crate::validate::Check;

/// One line of a step: what (`label`) and how (`value`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    /// e.g. `first_name`, `Calls`, `Retries`.
    pub label: String,
    /// e.g. `{{steps.fetch_contact.firstname}} · trimmed`.
    pub value: String,
}

fn line(label: impl Into<String>, value: impl Into<String>) -> Line {
    Line {
        label: label.into(),
        value: value.into(),
    }
}

/// The trigger in words ("HubSpot: A contact is created").
pub fn trigger_text(d: &Definition) -> String {
    let def = d.trigger.connector.def();
    format!(
        "{}: {}",
        def.name,
        def.trigger(&d.trigger.event)
            .map_or(d.trigger.event.as_str(), |t| t.label)
    )
}

/// A transform in words.
pub fn transform_text(t: &Transform) -> String {
    match t {
        Transform::Trim => "trimmed".into(),
        Transform::Lower => "lower-cased".into(),
        Transform::Upper => "upper-cased".into(),
        Transform::Default { value } => format!("default {value}"),
        Transform::Date { from, to } => format!("date from {from} to {to}"),
        Transform::PhoneE164 { country_code } => {
            format!("phone to E.164 (national numbers: +{country_code})")
        }
        Transform::Lookup { table, fallback } => {
            let mut pairs: Vec<String> = table.iter().map(|(k, v)| format!("{k} → {v}")).collect();
            if let Some(f) = fallback {
                pairs.push(format!("otherwise {f}"));
            }
            format!("looked up ({})", pairs.join(", "))
        }
    }
}

/// An expression in words: the builder's `{{path}}` text and its finishing
/// touches.
pub fn expr_text(e: &Expr) -> String {
    match e {
        Expr::Path { path } => format!("{{{{{path}}}}}"),
        Expr::Literal { value } => match value {
            serde_json::Value::String(s) => format!("“{s}”"),
            other => other.to_string(),
        },
        Expr::Concat { parts, separator } => parts
            .iter()
            .map(expr_text)
            .collect::<Vec<_>>()
            .join(&format!(" + “{separator}” + ")),
        Expr::Apply { input, transform } => {
            format!("{} · {}", expr_text(input), transform_text(transform))
        }
        Expr::Object { fields } => fields
            .iter()
            .map(|(k, v)| format!("{k} = {}", expr_text(v)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A check in words.
pub fn check_text(c: &Check) -> String {
    match c {
        Check::Required => "present (not empty)".into(),
        Check::Email => "an email address".into(),
        Check::Phone => "a phone number in E.164".into(),
        Check::Date => "a date (YYYY-MM-DD)".into(),
        Check::Country => "a country code (ISO 3166-1)".into(),
        Check::OneOf { values } => format!("one of {}", values.join(", ")),
        Check::MaxLen { max } => format!("at most {max} characters"),
    }
}

/// Seconds in words ("24 h", "15 min").
pub fn duration_text(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 && s >= 2 * 86_400 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 && s >= 3600 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// What a step does, line by line.
pub fn step_lines(step: &Step) -> Vec<Line> {
    match &step.kind {
        StepKind::Action {
            connector,
            action,
            input,
            retry,
        } => {
            let def = connector.def();
            let mut out = vec![line(
                "Calls",
                format!(
                    "{} — {}",
                    def.name,
                    def.action(action).map_or(action.as_str(), |a| a.label)
                ),
            )];
            for (field, e) in input {
                match e {
                    Expr::Object { fields } => {
                        for (k, v) in fields {
                            out.push(line(format!("{field}.{k}"), expr_text(v)));
                        }
                    }
                    _ => out.push(line(field.clone(), expr_text(e))),
                }
            }
            out.push(line(
                "Retries",
                format!(
                    "{} attempt(s), back-off from {} ms",
                    retry.attempts, retry.backoff_ms
                ),
            ));
            out
        }
        StepKind::Validate { rules } => rules
            .iter()
            .map(|r| {
                line(
                    r.path.to_string(),
                    format!("must be {}", check_text(&r.check)),
                )
            })
            .collect(),
        StepKind::Map { output } => output
            .iter()
            .map(|(k, e)| line(k.clone(), expr_text(e)))
            .collect(),
        StepKind::Wait {
            connector,
            event,
            correlation,
            event_field,
            timeout_secs,
        } => vec![
            line(
                "Waits for",
                format!(
                    "{} {}",
                    connector.def().name,
                    connector
                        .def()
                        .trigger(event)
                        .map_or(event.as_str(), |t| t.label)
                ),
            ),
            line(
                "Matched by",
                format!("{event_field} = {}", expr_text(correlation)),
            ),
            line("Gives up after", duration_text(*timeout_secs)),
        ],
        StepKind::Condition {
            path,
            equals,
            negate,
        } => vec![line(
            "Continues only if",
            format!(
                "{{{{{path}}}}} {} {equals}",
                if *negate { "is not" } else { "is" }
            ),
        )],
    }
}

/// The fields a definition writes to another system: (system, field,
/// where it comes from), for the fields-mapped table.
pub fn mapped_fields(d: &Definition) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for step in &d.steps {
        if let StepKind::Action {
            connector, input, ..
        } = &step.kind
        {
            for (field, e) in input {
                match e {
                    Expr::Object { fields } => {
                        for (k, v) in fields {
                            out.push((
                                step.title(),
                                connector.def().name.to_owned(),
                                format!("{field}.{k}"),
                                expr_text(v),
                            ));
                        }
                    }
                    _ => out.push((
                        step.title(),
                        connector.def().name.to_owned(),
                        field.clone(),
                        expr_text(e),
                    )),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::reference_template;

    #[test]
    fn the_reference_workflow_reads_as_lines() {
        let d = reference_template();
        assert!(
            trigger_text(&d).starts_with("HubSpot CRM: "),
            "{}",
            trigger_text(&d)
        );
        let validate = step_lines(&d.steps[1]);
        assert!(validate.iter().any(
            |l| l.label == "steps.fetch_contact.email" && l.value == "must be an email address"
        ));
        let start = step_lines(&d.steps[2]);
        assert!(
            start.iter().any(|l| l.label == "email"
                && l.value == "{{steps.fetch_contact.email}} · trimmed · lower-cased"),
            "{start:?}"
        );
        let wait = step_lines(&d.steps[3]);
        assert!(wait.iter().any(|l| l.value == "24 h"));
        let mapped = mapped_fields(&d);
        assert!(
            mapped.iter().any(|(_, sys, f, _)| sys == "HubSpot CRM"
                && f == "properties.identity_verification_status")
        );
    }
}
