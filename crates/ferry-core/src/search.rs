//! Finding runs by a person's name or email without storing either in the
//! clear: the words are normalised here and stored (and looked up) only as
//! keyed hashes.

use serde_json::Value;

/// A search word as stored and as looked up: spaces collapsed, lower case.
pub fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A record's name for people and the words it can be found by, from an
/// action's output (a CRM contact: first and last name, email): each name
/// word, the full name and the email. None when the output names no one.
pub fn record_name(output: &Value) -> Option<(String, Vec<String>)> {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| output.get(*k).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let first = text(&["firstname", "first_name"]);
    let last = text(&["lastname", "last_name"]);
    let email = text(&["email"]);
    let name = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let label = match (name.is_empty(), email) {
        (false, _) => name.clone(),
        (true, Some(e)) => e.to_owned(),
        (true, None) => return None,
    };
    let mut words: Vec<String> = name.split_whitespace().map(normalize).collect();
    if words.len() > 1 {
        words.push(normalize(&name));
    }
    words.extend(email.map(normalize));
    words.sort();
    words.dedup();
    Some((label.chars().take(200).collect(), words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_contact_is_found_by_each_name_word_its_full_name_and_email() {
        let (label, words) = record_name(
            &json!({ "firstname": " Ada ", "lastname": "King  Lovelace", "email": "Ada@Example.com" }),
        )
        .unwrap();
        assert_eq!(label, "Ada King  Lovelace");
        assert_eq!(
            words,
            [
                "ada",
                "ada king lovelace",
                "ada@example.com",
                "king",
                "lovelace"
            ]
        );
        assert_eq!(normalize("  ADA   king lovelace "), "ada king lovelace");
        assert!(record_name(&json!({ "id": "7", "status": "clear" })).is_none());
        assert_eq!(
            record_name(&json!({ "email": "x@y.z" })).unwrap().0,
            "x@y.z"
        );
    }
}
