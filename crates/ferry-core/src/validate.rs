//! Validation before every write: required fields, formats (email, phone,
//! date, country), enumerations, length. A record that fails is not written;
//! the violations say which field and why.

use crate::EmailAddress;
use crate::catalog::{FieldSchema, FieldType};
use crate::mapping::{FieldPath, phone_e164};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One check on one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// Present and not empty.
    Required,
    /// An email address.
    Email,
    /// A phone number already in E.164.
    Phone,
    /// A date, YYYY-MM-DD.
    Date,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    /// One of the listed values.
    OneOf {
        /// The allowed values.
        values: Vec<String>,
    },
    /// At most this many characters.
    MaxLen {
        /// The limit.
        max: usize,
    },
}

/// A check on the value at a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Where the value is.
    pub path: FieldPath,
    /// What it must be.
    pub check: Check,
}

/// A failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field, as named to people.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Checks one value; `Ok` for an empty value unless the check is `Required`
/// (absence is `Required`'s business alone).
pub fn check_value(check: &Check, v: &Value) -> Result<(), String> {
    if let Check::Required = check {
        return if is_empty(v) {
            Err("is required".into())
        } else {
            Ok(())
        };
    }
    if is_empty(v) {
        return Ok(());
    }
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(_) => return Err("must be text, not true or false".into()),
        Value::Array(_) => return Err("must be text, not a list".into()),
        Value::Object(_) => return Err("must be text, not an object".into()),
        Value::Null => return Ok(()),
    };
    match check {
        Check::Required => Ok(()),
        Check::Email => EmailAddress::parse("email", &text)
            .map(|_| ())
            .map_err(|_| "is not an email address".to_owned()),
        Check::Phone => match phone_e164(&text, "") {
            Ok(e) if e == text => Ok(()),
            _ => Err("is not a phone number in E.164 (+ and 8 to 15 digits)".into()),
        },
        Check::Date => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(|_| ())
            .map_err(|_| "is not a date like 2024-02-29".to_owned()),
        Check::Country => {
            if text.len() == 2 && COUNTRIES.split(' ').any(|c| c == text) {
                Ok(())
            } else {
                Err("is not an ISO country code like GB".into())
            }
        }
        Check::OneOf { values } => {
            if values.iter().any(|x| x == &text) {
                Ok(())
            } else {
                Err(format!("is not one of {}", values.join(", ")))
            }
        }
        Check::MaxLen { max } => {
            if text.chars().count() <= *max {
                Ok(())
            } else {
                Err(format!("is longer than {max} characters"))
            }
        }
    }
}

/// Applies rules to the run's data.
pub fn validate(rules: &[Rule], data: &Value) -> Vec<Violation> {
    rules
        .iter()
        .filter_map(|r| {
            let v = r.path.get(data).cloned().unwrap_or(Value::Null);
            check_value(&r.check, &v).err().map(|message| Violation {
                field: r.path.to_string(),
                message,
            })
        })
        .collect()
}

/// The checks a schema field implies.
pub fn implied_checks(f: &FieldSchema) -> Vec<Check> {
    let mut checks = Vec::new();
    if f.required {
        checks.push(Check::Required);
    }
    match f.ty {
        FieldType::Email => checks.push(Check::Email),
        FieldType::Phone => checks.push(Check::Phone),
        FieldType::Date => checks.push(Check::Date),
        FieldType::Country => checks.push(Check::Country),
        FieldType::Enum(values) => checks.push(Check::OneOf {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }),
        _ => {}
    }
    if let Some(max) = f.max_len {
        checks.push(Check::MaxLen { max });
    }
    checks
}

/// Validates an action's input against its schema: what a write must pass.
pub fn validate_input(schema: &[FieldSchema], input: &Map<String, Value>) -> Vec<Violation> {
    let mut out = Vec::new();
    for f in schema {
        let v = input.get(f.name).cloned().unwrap_or(Value::Null);
        for check in implied_checks(f) {
            if let Err(message) = check_value(&check, &v) {
                out.push(Violation {
                    field: f.name.to_owned(),
                    message,
                });
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ConnectorKey;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn a_check_input_needs_names_and_a_valid_email() {
        let schema = ConnectorKey::Verification
            .def()
            .action("create_check")
            .unwrap()
            .input;
        let ok = json!({ "first_name": "Ada", "last_name": "Lovelace", "email": "ada+kyc@example.com", "date_of_birth": "1815-12-10" });
        assert!(validate_input(schema, ok.as_object().unwrap()).is_empty());
        let bad = json!({ "first_name": " ", "last_name": "L", "email": "not-an-email", "date_of_birth": "10/12/1815", "document_type": "library_card" });
        let v = validate_input(schema, bad.as_object().unwrap());
        let fields: Vec<&str> = v.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["first_name", "email", "date_of_birth", "document_type"],
            "{v:?}"
        );
    }

    #[test]
    fn edge_formats() {
        assert!(check_value(&Check::Email, &json!("o'brien+tag@sub.example.co.uk")).is_ok());
        assert!(check_value(&Check::Email, &json!("ada@localhost")).is_err());
        assert!(check_value(&Check::Phone, &json!("+442079460018")).is_ok());
        assert!(check_value(&Check::Phone, &json!("020 7946 0018")).is_err());
        assert!(check_value(&Check::Date, &json!("2024-02-29")).is_ok());
        assert!(check_value(&Check::Date, &json!("2023-02-29")).is_err());
        assert!(check_value(&Check::Country, &json!("GB")).is_ok());
        assert!(check_value(&Check::Country, &json!("UK")).is_err());
        assert!(check_value(&Check::MaxLen { max: 3 }, &json!("abcd")).is_err());
        assert!(
            check_value(&Check::Email, &Value::Null).is_ok(),
            "absence is Required's business"
        );
        assert!(check_value(&Check::Required, &json!("  ")).is_err());
    }

    #[test]
    fn rules_name_the_field() {
        let rules = vec![Rule {
            path: FieldPath::parse("steps.fetch.email").unwrap(),
            check: Check::Required,
        }];
        let v = validate(&rules, &json!({ "steps": { "fetch": {} } }));
        assert_eq!(
            v,
            vec![Violation {
                field: "steps.fetch.email".into(),
                message: "is required".into()
            }]
        );
    }

    proptest! {
        #[test]
        fn what_the_email_check_accepts_parses_as_an_address(local in "[a-z0-9._+-]{1,20}", domain in "[a-z]{1,10}\\.[a-z]{2,5}") {
            let candidate = format!("{local}@{domain}");
            if check_value(&Check::Email, &json!(candidate)).is_ok() {
                prop_assert!(EmailAddress::parse("email", &candidate).is_ok());
            }
        }

        #[test]
        fn max_len_agrees_with_char_count(s in ".{0,30}", max in 0usize..30) {
            let ok = check_value(&Check::MaxLen { max }, &json!(s)).is_ok();
            prop_assert_eq!(ok, s.trim().is_empty() || s.chars().count() <= max);
        }
    }
}
