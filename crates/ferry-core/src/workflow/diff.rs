//! What changed between two definitions, in words for the person (the
//! "unpublished changes" summary: the draft against the published version).

use super::Definition;

/// Each change from `old` to `new`, in step order; empty when they are the
/// same.
pub fn changes(old: &Definition, new: &Definition) -> Vec<String> {
    let mut out = Vec::new();
    if old.trigger != new.trigger {
        out.push(format!(
            "Trigger changed from {} {} to {} {}.",
            old.trigger.connector.def().name,
            old.trigger.event,
            new.trigger.connector.def().name,
            new.trigger.event
        ));
    }
    for s in &old.steps {
        if !new.steps.iter().any(|n| n.key == s.key) {
            out.push(format!("Step {} removed.", s.key));
        }
    }
    for s in &new.steps {
        match old.steps.iter().find(|o| o.key == s.key) {
            None => out.push(format!("Step {} added.", s.key)),
            Some(o) if o.kind != s.kind => out.push(format!("Step {} changed.", s.key)),
            Some(_) => {}
        }
    }
    let kept = |from: &Definition, to: &Definition| -> Vec<String> {
        from.steps
            .iter()
            .filter(|s| to.steps.iter().any(|t| t.key == s.key))
            .map(|s| s.key.clone())
            .collect()
    };
    if kept(old, new) != kept(new, old) {
        out.push("Steps reordered.".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{StepOp, reference_template};

    #[test]
    fn the_same_definition_has_no_changes() {
        let d = reference_template();
        assert!(changes(&d, &d.clone()).is_empty());
    }

    #[test]
    fn removals_additions_edits_and_moves_are_named() {
        let old = reference_template();
        let mut new = old.clone();
        new.apply(StepOp::Remove {
            key: "validate_contact".into(),
        })
        .unwrap();
        new.apply(StepOp::Move {
            key: "write_back".into(),
            up: true,
        })
        .unwrap();
        new.steps[0].key = "fetch".into();
        assert_eq!(
            changes(&old, &new),
            vec![
                "Step fetch_contact removed.",
                "Step validate_contact removed.",
                "Step fetch added.",
                "Steps reordered.",
            ]
        );
        let mut edited = old.clone();
        edited.trigger.event = "contact.propertyChange".into();
        if let crate::workflow::StepKind::Wait { timeout_secs, .. } = &mut edited.steps[3].kind {
            *timeout_secs = 60;
        }
        let said = changes(&old, &edited);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("Trigger changed from HubSpot CRM contact.creation"));
        assert_eq!(said[1], "Step wait_result changed.");
    }
}
