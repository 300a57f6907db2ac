//! Redaction of personal data in run records. What a step read and wrote is
//! recorded for audit, but fields whose schema marks them PII are replaced
//! by a marker before the record is stored. Where no schema is known, every
//! text value is redacted: unknown means personal until shown otherwise.

use crate::catalog::FieldSchema;
use serde_json::{Map, Value};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `value` with the PII fields of `schema` redacted. Keys are matched by
/// their dotted path from the top (`check.result`) or, failing that, by
/// name. A PII object's members are judged by `nested` (unknown ones are
/// redacted); a key in no schema is redacted when it holds text.
pub fn redact(schema: &[FieldSchema], nested: &[FieldSchema], value: &Value) -> Value {
    walk(schema, nested, value, "")
}

fn walk(schema: &[FieldSchema], nested: &[FieldSchema], value: &Value, prefix: &str) -> Value {
    let Value::Object(map) = value else {
        return value.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let field = schema
            .iter()
            .find(|f| f.name == path)
            .or_else(|| schema.iter().find(|f| f.name == k));
        let redacted = match field {
            Some(f) if f.pii.is_pii() => match v {
                Value::Object(_) => walk(nested, &[], v, ""),
                Value::Null => Value::Null,
                _ => Value::String(REDACTED.into()),
            },
            Some(_) => v.clone(),
            None => match v {
                Value::Object(_) => walk(schema, nested, v, &path),
                other => redact_all(other),
            },
        };
        out.insert(k.clone(), redacted);
    }
    Value::Object(out)
}

/// `value` with every text leaf redacted (numbers, booleans and nulls kept).
pub fn redact_all(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String(REDACTED.into()),
        Value::Array(items) => Value::Array(items.iter().map(redact_all).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_all(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ConnectorKey;
    use serde_json::json;

    #[test]
    fn contact_fields_are_redacted_and_the_rest_kept() {
        let get = ConnectorKey::HubSpot.def().action("get_contact").unwrap();
        let out = redact(
            get.output,
            &[],
            &json!({"id": "7", "firstname": "Ada", "email": "ada@example.com", "date_of_birth": "1990-01-01", "country": "GB", "mystery": "x", "n": 3}),
        );
        assert_eq!(
            out,
            json!({"id": "7", "firstname": REDACTED, "email": REDACTED, "date_of_birth": REDACTED, "country": "GB", "mystery": REDACTED, "n": 3})
        );
    }

    #[test]
    fn a_pii_object_keeps_only_members_known_not_to_be_personal() {
        let update = ConnectorKey::HubSpot
            .def()
            .action("update_contact")
            .unwrap();
        let out = redact(
            update.input,
            update.output,
            &json!({"contact_id": "7", "properties": {"identity_verification_status": "pass", "identity_verification_ref": "chk_1", "firstname": "Ada", "custom": "x"}}),
        );
        assert_eq!(
            out,
            json!({"contact_id": "7", "properties": {"identity_verification_status": "pass", "identity_verification_ref": "chk_1", "firstname": REDACTED, "custom": REDACTED}})
        );
    }

    #[test]
    fn dotted_schema_names_match_nested_values() {
        let t = ConnectorKey::Verification
            .def()
            .trigger("check.completed")
            .unwrap();
        let out = redact(
            t.fields,
            &[],
            &json!({"type": "check.completed", "check": {"id": "chk_1", "result": "clear", "applicant": "Ada"}}),
        );
        assert_eq!(
            out,
            json!({"type": "check.completed", "check": {"id": "chk_1", "result": "clear", "applicant": REDACTED}})
        );
    }
}

/// `value` with the values of every key named in `names` redacted, at any
/// depth (a tenant's reclassified fields, applied on top of the catalog's).
pub fn redact_named(value: &Value, names: &std::collections::BTreeSet<String>) -> Value {
    if names.is_empty() {
        return value.clone();
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if names.contains(k) && !v.is_null() {
                        match v {
                            Value::Object(_) | Value::Array(_) => redact_all(v),
                            _ => Value::String(REDACTED.into()),
                        }
                    } else {
                        redact_named(v, names)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_named(v, names)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod named_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_keys_are_redacted_at_any_depth_and_others_kept() {
        let names = ["country".to_owned()].into_iter().collect();
        let v = json!({"country": "JP", "properties": {"country": "FR", "id": 7}, "list": [{"country": 1}], "empty": {"country": null}});
        assert_eq!(
            redact_named(&v, &names),
            json!({"country": REDACTED, "properties": {"country": REDACTED, "id": 7}, "list": [{"country": REDACTED}], "empty": {"country": null}})
        );
        assert_eq!(redact_named(&v, &Default::default()), v);
    }
}
