//! Mapping expressions: read a field path from the trigger payload or an
//! earlier step's output, and transform it (trim, case, default, concat,
//! dates, phone numbers to E.164, lookup tables). Pure functions over JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Why a mapping could not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

/// A path into the run's data: `trigger.objectId`,
/// `steps.fetch_contact.email`. Segments are letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses `trigger.a.b` or `steps.<step>.a.b`.
    pub fn parse(raw: &str) -> Result<Self, MapError> {
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let valid_segment = |s: &String| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !segments.iter().all(valid_segment) {
            return Err(MapError(format!(
                "'{raw}' is not a field path (letters, digits and _ separated by dots)"
            )));
        }
        match segments.first().map(String::as_str) {
            Some("trigger") if segments.len() >= 2 => Ok(Self(segments)),
            Some("steps") if segments.len() >= 3 => Ok(Self(segments)),
            _ => Err(MapError(format!(
                "'{raw}' must start with trigger.<field> or steps.<step>.<field>"
            ))),
        }
    }

    /// A path written in Ferry's own code (templates); tests check that
    /// `parse` accepts each of them.
    pub(crate) fn trusted(raw: &str) -> Self {
        Self(raw.split('.').map(str::to_owned).collect())
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The step a `steps.…` path reads from.
    pub fn step(&self) -> Option<&str> {
        (self.0.first().map(String::as_str) == Some("steps"))
            .then(|| self.0.get(1).map(String::as_str))
            .flatten()
    }

    /// The field name under the trigger or step (first segment after it).
    pub fn field(&self) -> &str {
        let i = if self.step().is_some() { 2 } else { 1 };
        self.0.get(i).map_or("", String::as_str)
    }

    /// Everything after `trigger.` or `steps.<step>.`, dot-joined.
    pub fn rest(&self) -> String {
        let i = if self.step().is_some() { 2 } else { 1 };
        self.0.get(i..).map(|s| s.join(".")).unwrap_or_default()
    }

    /// The value at this path in `data`, if any.
    pub fn get<'a>(&self, data: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(data, |v, seg| match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }
}

impl TryFrom<String> for FieldPath {
    type Error = MapError;
    fn try_from(s: String) -> Result<Self, MapError> {
        Self::parse(&s)
    }
}

impl From<FieldPath> for String {
    fn from(p: FieldPath) -> String {
        p.to_string()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A transform applied to a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Transform {
    /// Remove leading and trailing white space.
    Trim,
    /// Lower-case.
    Lower,
    /// Upper-case.
    Upper,
    /// Use `value` when the input is missing, null or empty text.
    Default {
        /// The fallback.
        value: Value,
    },
    /// Re-format a date: parse with `from`, print with `to` (strftime
    /// patterns; `iso` means `%Y-%m-%d`).
    Date {
        /// Input pattern.
        from: String,
        /// Output pattern.
        to: String,
    },
    /// A phone number to E.164 (`+` and 8 to 15 digits). A national number
    /// (leading 0) takes `country_code`. Normalises; does not check
    /// numbering plans.
    PhoneE164 {
        /// Calling code for national numbers, e.g. `44`.
        country_code: String,
    },
    /// A lookup table or value mapping: the input's text is looked up; with
    /// no match, `fallback` if given, else an error.
    Lookup {
        /// The table.
        table: BTreeMap<String, Value>,
        /// Used when nothing matches.
        fallback: Option<Value>,
    },
}

/// A mapping expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expr {
    /// A field of the trigger or an earlier step.
    Path {
        /// Where.
        path: FieldPath,
    },
    /// A constant.
    Literal {
        /// The value.
        value: Value,
    },
    /// Texts joined with a separator (missing parts skipped).
    Concat {
        /// The parts.
        parts: Vec<Expr>,
        /// The separator.
        separator: String,
    },
    /// An object built from named expressions (e.g. properties to write).
    Object {
        /// Field -> expression.
        fields: BTreeMap<String, Expr>,
    },
    /// A transform of another expression.
    Apply {
        /// The input.
        input: Box<Expr>,
        /// The transform.
        transform: Transform,
    },
}

impl Expr {
    /// A path expression (panics never: parse errors are returned).
    pub fn path(raw: &str) -> Result<Self, MapError> {
        Ok(Self::Path {
            path: FieldPath::parse(raw)?,
        })
    }

    /// This expression, transformed.
    pub fn then(self, transform: Transform) -> Self {
        Self::Apply {
            input: Box::new(self),
            transform,
        }
    }

    /// Every path the expression reads.
    pub fn paths(&self) -> Vec<&FieldPath> {
        match self {
            Self::Path { path } => vec![path],
            Self::Literal { .. } => vec![],
            Self::Concat { parts, .. } => parts.iter().flat_map(Self::paths).collect(),
            Self::Object { fields } => fields.values().flat_map(Self::paths).collect(),
            Self::Apply { input, .. } => input.paths(),
        }
    }

    /// Evaluates against the run's data (`{"trigger": …, "steps": {…}}`).
    /// A missing path is `null`, not an error: validation decides.
    pub fn eval(&self, data: &Value) -> Result<Value, MapError> {
        match self {
            Self::Path { path } => Ok(path.get(data).cloned().unwrap_or(Value::Null)),
            Self::Literal { value } => Ok(value.clone()),
            Self::Concat { parts, separator } => {
                let mut texts = Vec::new();
                for p in parts {
                    match p.eval(data)? {
                        Value::Null => {}
                        Value::String(s) if s.is_empty() => {}
                        Value::String(s) => texts.push(s),
                        other => texts.push(other.to_string()),
                    }
                }
                Ok(Value::String(texts.join(separator)))
            }
            Self::Object { fields } => {
                let mut out = serde_json::Map::new();
                for (k, e) in fields {
                    out.insert(k.clone(), e.eval(data)?);
                }
                Ok(Value::Object(out))
            }
            Self::Apply { input, transform } => apply(transform, input.eval(data)?),
        }
    }
}

fn text(v: &Value, op: &str) -> Result<Option<String>, MapError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(MapError(format!("{op} expects text, got {}", kind(other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn pattern(p: &str) -> &str {
    if p == "iso" { "%Y-%m-%d" } else { p }
}

/// Applies one transform. `null` passes through every transform but
/// `default`.
pub fn apply(t: &Transform, v: Value) -> Result<Value, MapError> {
    Ok(match t {
        Transform::Trim => {
            text(&v, "trim")?.map_or(Value::Null, |s| Value::String(s.trim().to_owned()))
        }
        Transform::Lower => {
            text(&v, "lower")?.map_or(Value::Null, |s| Value::String(s.to_lowercase()))
        }
        Transform::Upper => {
            text(&v, "upper")?.map_or(Value::Null, |s| Value::String(s.to_uppercase()))
        }
        Transform::Default { value } => match &v {
            Value::Null => value.clone(),
            Value::String(s) if s.trim().is_empty() => value.clone(),
            _ => v,
        },
        Transform::Date { from, to } => match text(&v, "date")? {
            None => Value::Null,
            Some(s) => {
                let d = chrono::NaiveDate::parse_from_str(s.trim(), pattern(from))
                    .map_err(|_| MapError(format!("the value is not a date in the form {from}")))?;
                Value::String(d.format(pattern(to)).to_string())
            }
        },
        Transform::PhoneE164 { country_code } => match text(&v, "phone")? {
            None => Value::Null,
            Some(s) => Value::String(phone_e164(&s, country_code)?),
        },
        Transform::Lookup { table, fallback } => match text(&v, "lookup")? {
            None => fallback.clone().unwrap_or(Value::Null),
            Some(s) => match table.get(&s).or(fallback.as_ref()) {
                Some(found) => found.clone(),
                None => return Err(MapError("the value is not in the lookup table".into())),
            },
        },
    })
}

/// Normalises a phone number to E.164.
pub fn phone_e164(raw: &str, country_code: &str) -> Result<String, MapError> {
    let trimmed = raw.trim();
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()/+".contains(c))
        || trimmed.matches('+').count() > 1
        || (trimmed.contains('+') && !trimmed.starts_with('+'))
    {
        return Err(MapError("the value is not a phone number".into()));
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let international = if trimmed.starts_with('+') {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits.strip_prefix('0') {
        if country_code.is_empty() || !country_code.chars().all(|c| c.is_ascii_digit()) {
            return Err(MapError(
                "the value is a national phone number and no country code is set".into(),
            ));
        }
        format!("{country_code}{rest}")
    } else {
        digits
    };
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return Err(MapError(
            "the value does not make an international phone number of 8 to 15 digits".into(),
        ));
    }
    Ok(format!("+{international}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "trigger": { "objectId": 101, "email": "  Ada@Example.COM " },
            "steps": { "fetch": { "firstname": "Ada", "lastname": "Lovelace", "dob": "10/12/1815", "phone": "020 7946 0018", "result": "clear" } }
        })
    }

    #[test]
    fn paths_read_the_trigger_and_earlier_steps() {
        let d = data();
        assert_eq!(
            Expr::path("trigger.objectId").unwrap().eval(&d).unwrap(),
            json!(101)
        );
        assert_eq!(
            Expr::path("steps.fetch.firstname")
                .unwrap()
                .eval(&d)
                .unwrap(),
            json!("Ada")
        );
        assert_eq!(
            Expr::path("steps.fetch.missing").unwrap().eval(&d).unwrap(),
            Value::Null
        );
        for bad in [
            "",
            "trigger",
            "steps.fetch",
            "other.x",
            "trigger..x",
            "trigger.a-b",
            "trigger.a b",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
        let p = FieldPath::parse("steps.fetch.firstname").unwrap();
        assert_eq!((p.step(), p.field()), (Some("fetch"), "firstname"));
    }

    #[test]
    fn transforms_chain() {
        let d = data();
        let email = Expr::path("trigger.email")
            .unwrap()
            .then(Transform::Trim)
            .then(Transform::Lower);
        assert_eq!(email.eval(&d).unwrap(), json!("ada@example.com"));
        let name = Expr::Concat {
            parts: vec![
                Expr::path("steps.fetch.firstname").unwrap(),
                Expr::path("steps.fetch.nothing").unwrap(),
                Expr::path("steps.fetch.lastname").unwrap(),
            ],
            separator: " ".into(),
        };
        assert_eq!(name.eval(&d).unwrap(), json!("Ada Lovelace"));
        let dob = Expr::path("steps.fetch.dob")
            .unwrap()
            .then(Transform::Date {
                from: "%d/%m/%Y".into(),
                to: "iso".into(),
            });
        assert_eq!(dob.eval(&d).unwrap(), json!("1815-12-10"));
        let phone = Expr::path("steps.fetch.phone")
            .unwrap()
            .then(Transform::PhoneE164 {
                country_code: "44".into(),
            });
        assert_eq!(phone.eval(&d).unwrap(), json!("+442079460018"));
        let outcome = Expr::path("steps.fetch.result")
            .unwrap()
            .then(Transform::Lookup {
                table: [
                    ("clear".to_owned(), json!("pass")),
                    ("consider".to_owned(), json!("fail")),
                ]
                .into(),
                fallback: Some(json!("pending")),
            });
        assert_eq!(outcome.eval(&d).unwrap(), json!("pass"));
        let missing = Expr::path("steps.fetch.nothing")
            .unwrap()
            .then(Transform::Default {
                value: json!("n/a"),
            });
        assert_eq!(missing.eval(&d).unwrap(), json!("n/a"));
        let strict = Expr::Literal {
            value: json!("other"),
        }
        .then(Transform::Lookup {
            table: BTreeMap::new(),
            fallback: None,
        });
        assert!(strict.eval(&d).is_err());
        assert!(
            Expr::Literal {
                value: json!("31/02/2020")
            }
            .then(Transform::Date {
                from: "%d/%m/%Y".into(),
                to: "iso".into()
            })
            .eval(&d)
            .is_err()
        );
        assert!(
            Expr::Literal {
                value: json!({"a": 1})
            }
            .then(Transform::Trim)
            .eval(&d)
            .is_err()
        );
    }

    #[test]
    fn expressions_round_trip_through_json() {
        let e = Expr::path("trigger.email").unwrap().then(Transform::Lower);
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Expr>(&text).unwrap(), e);
        assert!(serde_json::from_str::<Expr>(r#"{"kind":"path","path":"nowhere"}"#).is_err());
    }

    proptest! {
        #[test]
        fn case_and_trim_are_idempotent(s in ".{0,40}") {
            for t in [Transform::Trim, Transform::Lower, Transform::Upper] {
                let once = apply(&t, json!(s)).unwrap();
                prop_assert_eq!(apply(&t, once.clone()).unwrap(), once);
            }
        }

        #[test]
        fn phone_numbers_normalise_to_plus_and_digits(digits in "[1-9][0-9]{7,13}", seps in proptest::collection::vec(prop_oneof![Just(" "), Just("-"), Just("."), Just("")], 15)) {
            let mut spaced = String::from("+");
            for (i, c) in digits.chars().enumerate() {
                spaced.push(c);
                spaced.push_str(seps[i % seps.len()]);
            }
            let e164 = phone_e164(&spaced, "44").unwrap();
            prop_assert_eq!(&e164, &format!("+{digits}"));
            prop_assert_eq!(phone_e164(&e164, "44").unwrap(), e164.clone());
        }

        #[test]
        fn dates_round_trip(y in 1900i32..2100, m in 1u32..=12, d in 1u32..=28) {
            let iso = format!("{y:04}-{m:02}-{d:02}");
            let uk = apply(&Transform::Date { from: "iso".into(), to: "%d/%m/%Y".into() }, json!(iso)).unwrap();
            let back = apply(&Transform::Date { from: "%d/%m/%Y".into(), to: "iso".into() }, uk).unwrap();
            prop_assert_eq!(back, json!(iso));
        }

        #[test]
        fn concat_joins_the_non_empty_parts(parts in proptest::collection::vec("[a-z]{0,5}", 0..6)) {
            let e = Expr::Concat { parts: parts.iter().map(|p| Expr::Literal { value: json!(p) }).collect(), separator: "|".into() };
            let expected: Vec<&str> = parts.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
            prop_assert_eq!(e.eval(&Value::Null).unwrap(), json!(expected.join("|")));
        }

        #[test]
        fn evaluation_never_panics_on_any_data(key in "[a-z]{1,6}", value in any::<i64>(), text in ".{0,20}") {
            let d = json!({ "trigger": { key.clone(): value, "t": text } });
            let e = Expr::path(&format!("trigger.{key}")).unwrap().then(Transform::Trim).then(Transform::PhoneE164 { country_code: "1".into() });
            let _ = e.eval(&d);
            let _ = Expr::path("trigger.t").unwrap().then(Transform::Date { from: "iso".into(), to: "iso".into() }).eval(&d);
        }
    }
}
