//! Audit actions in words (the pages are in `compliance`).

/// A human description of an audit action (the code itself for one this
/// version does not know).
pub fn describe(action: &str) -> &str {
    match ferry_core::AuditAction::parse(action) {
        Some(known) => known.label(),
        None => action,
    }
}
