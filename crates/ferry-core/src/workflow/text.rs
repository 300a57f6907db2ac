//! A value as the builder's text box holds it: fixed text, fields written
//! as `{{trigger.objectId}}` (the "data pills"), or both (a template such as
//! `{{steps.fetch.firstname}} {{steps.fetch.lastname}}`), then one
//! finishing touch (a [`Shape`]: trim, case, phone, date, default, or a
//! lookup table). Round-trips with [`Expr`] for everything the builder
//! makes; anything else is shown as made in the JSON editor.

use crate::catalog::FieldType;
use crate::mapping::{Expr, FieldPath, Transform};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What is done to the value once read, as the builder offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Nothing.
    AsIs,
    /// Spaces trimmed.
    Trim,
    /// Trimmed and lower-cased.
    TrimLower,
    /// Trimmed and upper-cased.
    TrimUpper,
    /// A phone number to +E.164; national numbers take this calling code.
    Phone(String),
    /// A date read in this pattern (`%d/%m/%Y`), written YYYY-MM-DD.
    Date(String),
    /// This text when the value is missing or empty.
    Default(String),
    /// Each value looked up in a table; `fallback` when none matches.
    Lookup {
        /// Value read -> value written.
        table: Vec<(String, String)>,
        /// Written when nothing matches (none: the run fails, naming it).
        fallback: Option<String>,
    },
}

impl Shape {
    /// Its form value.
    pub fn key(&self) -> &'static str {
        match self {
            Self::AsIs => "",
            Self::Trim => "trim",
            Self::TrimLower => "lower",
            Self::TrimUpper => "upper",
            Self::Phone(_) => "phone",
            Self::Date(_) => "date",
            Self::Default(_) => "default",
            Self::Lookup { .. } => "lookup",
        }
    }

    /// Its argument as the form shows it (calling code, date pattern,
    /// default text).
    pub fn arg(&self) -> &str {
        match self {
            Self::Phone(a) | Self::Date(a) | Self::Default(a) => a,
            _ => "",
        }
    }

    /// The choices, with their labels.
    pub const CHOICES: [(&'static str, &'static str); 8] = [
        ("", "as it is"),
        ("trim", "spaces trimmed"),
        ("lower", "trimmed, lower case"),
        ("upper", "trimmed, UPPER CASE"),
        ("phone", "phone number to +44…"),
        ("date", "date to YYYY-MM-DD"),
        ("default", "a default when empty"),
        ("lookup", "looked up in a table"),
    ];

    /// From the form: the choice, its argument and the lookup rows.
    pub fn parse(
        key: &str,
        arg: &str,
        table: Vec<(String, String)>,
        fallback: &str,
    ) -> Result<Self, String> {
        let arg = arg.trim();
        Ok(match key {
            "" => Self::AsIs,
            "trim" => Self::Trim,
            "lower" => Self::TrimLower,
            "upper" => Self::TrimUpper,
            "phone" => {
                if arg.is_empty() || arg.len() > 3 || !arg.chars().all(|c| c.is_ascii_digit()) {
                    return Err("Give the country calling code for national numbers, 1 to 3 digits (44 for the UK).".into());
                }
                Self::Phone(arg.to_owned())
            }
            "date" => {
                if !["%d", "%m", "%Y"].iter().all(|p| arg.contains(p)) || arg.len() > 20 {
                    return Err("Give the date's pattern with %d, %m and %Y, e.g. %d/%m/%Y.".into());
                }
                Self::Date(arg.to_owned())
            }
            "default" => Self::Default(arg.to_owned()),
            "lookup" => {
                let table: Vec<(String, String)> = table
                    .into_iter()
                    .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
                    .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                    .collect();
                let fallback = Some(fallback.trim().to_owned()).filter(|f| !f.is_empty());
                if table.is_empty() && fallback.is_none() {
                    return Err("Fill in at least one row of the table.".into());
                }
                Self::Lookup { table, fallback }
            }
            _ => return Err("Choose what to do with the value from the list.".into()),
        })
    }

    fn transforms(&self) -> Vec<Transform> {
        match self {
            Self::AsIs => vec![],
            Self::Trim => vec![Transform::Trim],
            Self::TrimLower => vec![Transform::Trim, Transform::Lower],
            Self::TrimUpper => vec![Transform::Trim, Transform::Upper],
            Self::Phone(cc) => vec![Transform::PhoneE164 {
                country_code: cc.clone(),
            }],
            Self::Date(from) => vec![Transform::Date {
                from: from.clone(),
                to: "iso".into(),
            }],
            Self::Default(v) => vec![Transform::Default { value: json!(v) }],
            Self::Lookup { table, fallback } => vec![Transform::Lookup {
                table: table
                    .iter()
                    .map(|(a, b)| (a.clone(), json!(b)))
                    .collect::<BTreeMap<_, _>>(),
                fallback: fallback.as_ref().map(|f| json!(f)),
            }],
        }
    }

    fn from_transforms(ts: &[&Transform]) -> Option<Self> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Some(match ts {
            [] => Self::AsIs,
            [Transform::Trim] => Self::Trim,
            [Transform::Trim, Transform::Lower] => Self::TrimLower,
            [Transform::Trim, Transform::Upper] => Self::TrimUpper,
            [Transform::PhoneE164 { country_code }] => Self::Phone(country_code.clone()),
            [Transform::Date { from, to }] if to == "iso" => Self::Date(from.clone()),
            [Transform::Default { value }] => Self::Default(text(value)?),
            [Transform::Lookup { table, fallback }] => Self::Lookup {
                table: table
                    .iter()
                    .map(|(a, b)| Some((a.clone(), text(b)?)))
                    .collect::<Option<_>>()?,
                fallback: match fallback {
                    None => None,
                    Some(f) => Some(text(f)?),
                },
            },
            _ => return None,
        })
    }
}

/// An expression as the builder shows it: its text and its shape; `None`
/// when the builder cannot show it (an object, a list, several finishing
/// touches made in the JSON editor).
pub fn to_text(e: &Expr) -> Option<(String, Shape)> {
    let mut ts = Vec::new();
    let mut base = e;
    while let Expr::Apply { input, transform } = base {
        ts.push(transform);
        base = input;
    }
    ts.reverse();
    let shape = Shape::from_transforms(&ts)?;
    let text = base_text(base)?;
    Some((text, shape))
}

fn base_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Path { path } => Some(format!("{{{{{path}}}}}")),
        Expr::Literal { value } => match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some(String::new()),
            _ => None,
        },
        Expr::Concat { parts, separator } => {
            let mut out = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                match p {
                    Expr::Path { .. } | Expr::Literal { .. } => out.push_str(&base_text(p)?),
                    _ => return None,
                }
            }
            Some(out)
        }
        Expr::Object { .. } | Expr::Apply { .. } => None,
    }
}

/// The value typed for a field of type `ty`, with its shape: `None` when
/// the text is empty (nothing mapped). The message names the rule, never
/// the text.
pub fn from_text(raw: &str, ty: FieldType, shape: Shape) -> Result<Option<Expr>, String> {
    if raw.trim().is_empty() {
        return Ok(match shape {
            // A default alone is a fixed value.
            Shape::Default(v) if !v.is_empty() => Some(Expr::Literal { value: json!(v) }),
            _ => None,
        });
    }
    if raw.chars().count() > 2000 {
        return Err("Use at most 2000 characters.".into());
    }
    let mut parts: Vec<Expr> = Vec::new();
    let mut rest = raw;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Expr::Literal {
                value: json!(rest[..open]),
            });
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or("A {{ is not closed with }}: pick the field from the list.")?;
        let path = FieldPath::parse(after[..close].trim()).map_err(
            |_| "Something between {{ and }} is not a field: pick fields from the list.",
        )?;
        parts.push(Expr::Path { path });
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err("A }} has no {{ before it: pick the field from the list.".into());
    }
    if !rest.is_empty() {
        parts.push(Expr::Literal { value: json!(rest) });
    }
    let base = match parts.as_slice() {
        [Expr::Path { .. }] => parts.remove(0),
        [Expr::Literal { .. }] => Expr::Literal {
            value: literal(raw.trim(), ty)?,
        },
        _ => Expr::Concat {
            parts,
            separator: String::new(),
        },
    };
    Ok(Some(shape.transforms().into_iter().fold(base, Expr::then)))
}

fn literal(raw: &str, ty: FieldType) -> Result<Value, String> {
    Ok(match ty {
        FieldType::Number => {
            if let Ok(n) = raw.parse::<i64>() {
                json!(n)
            } else {
                raw.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| json!(f))
                    .ok_or("Enter a number, or pick a field.")?
            }
        }
        FieldType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" => json!(true),
            "false" | "no" => json!(false),
            _ => return Err("Enter true or false, or pick a field.".into()),
        },
        _ => json!(raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_through_expressions() {
        for (text, shape) in [
            ("{{trigger.objectId}}", Shape::AsIs),
            ("{{steps.fetch.email}}", Shape::TrimLower),
            (
                "{{steps.fetch.firstname}} {{steps.fetch.lastname}}",
                Shape::Trim,
            ),
            ("Client: {{steps.fetch.lastname}}!", Shape::AsIs),
            ("pending", Shape::AsIs),
            ("{{steps.fetch.phone}}", Shape::Phone("44".into())),
            ("{{steps.fetch.dob}}", Shape::Date("%d/%m/%Y".into())),
            ("{{steps.fetch.country}}", Shape::Default("GB".into())),
            (
                "{{steps.wait.check.result}}",
                Shape::Lookup {
                    table: vec![
                        ("clear".into(), "pass".into()),
                        ("consider".into(), "needs_review".into()),
                    ],
                    fallback: Some("pending".into()),
                },
            ),
        ] {
            let e = from_text(text, FieldType::Text, shape.clone())
                .unwrap()
                .unwrap();
            assert_eq!(to_text(&e), Some((text.to_owned(), shape)), "{text}");
        }
    }

    #[test]
    fn a_template_joins_fields_and_fixed_text() {
        let e = from_text(
            "{{steps.f.first}} {{steps.f.last}}",
            FieldType::Text,
            Shape::AsIs,
        )
        .unwrap()
        .unwrap();
        let data = json!({ "steps": { "f": { "first": "Ada", "last": "Lovelace" } } });
        assert_eq!(e.eval(&data).unwrap(), json!("Ada Lovelace"));
    }

    #[test]
    fn fixed_values_take_the_fields_type_and_mistakes_are_named_not_quoted() {
        assert_eq!(
            from_text(" 3 ", FieldType::Number, Shape::AsIs).unwrap(),
            Some(Expr::Literal { value: json!(3) })
        );
        assert_eq!(from_text("  ", FieldType::Text, Shape::AsIs).unwrap(), None);
        for (bad, ty) in [
            ("{{steps.x", FieldType::Text),
            ("{{ not a field }}", FieldType::Text),
            ("secret}}", FieldType::Text),
            ("three", FieldType::Number),
            ("maybe", FieldType::Boolean),
        ] {
            let err = from_text(bad, ty, Shape::AsIs).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
        assert!(Shape::parse("phone", "4a", vec![], "").is_err());
        assert!(Shape::parse("lookup", "", vec![("".into(), "".into())], "").is_err());
    }
}
