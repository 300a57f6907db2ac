//! What the audit log records: one typed action per kind of change, stored
//! as its stable code (`connection.created`), shown as a sentence.

/// A kind of change the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `user.logged_in`: Signed in.
    UserLoggedIn,
    /// `user.logged_out`: Signed out.
    UserLoggedOut,
    /// `user.invited`: Invited a person.
    UserInvited,
    /// `invite.accepted`: Accepted an invite.
    InviteAccepted,
    /// `user.password_reset`: Reset their password.
    UserPasswordReset,
    /// `user.role_changed`: Changed a role.
    UserRoleChanged,
    /// `user.deactivated`: Deactivated a person.
    UserDeactivated,
    /// `user.reactivated`: Reactivated a person.
    UserReactivated,
    /// `tenant.created`: Created a tenant.
    TenantCreated,
    /// `tenant.suspended`: Suspended a tenant.
    TenantSuspended,
    /// `tenant.reactivated`: Reactivated a tenant.
    TenantReactivated,
    /// `tenant.deleted`: Deleted a tenant.
    TenantDeleted,
    /// `operator.created`: Created an operator.
    OperatorCreated,
    /// `operator.invited`: Invited an operator.
    OperatorInvited,
    /// `connection.created`: Connected an app.
    ConnectionCreated,
    /// `connection.tested`: Tested a connection.
    ConnectionTested,
    /// `connection.revoked`: Revoked a connection.
    ConnectionRevoked,
    /// `sandbox.samples_created`: Created sample contacts.
    SandboxSamplesCreated,
    /// `workflow.created`: Created a workflow.
    WorkflowCreated,
    /// `workflow.draft_saved`: Saved a workflow draft.
    WorkflowDraftSaved,
    /// `workflow.connections_set`: Chose a workflow's connections.
    WorkflowConnectionsSet,
    /// `workflow.published`: Published a workflow version.
    WorkflowPublished,
    /// `workflow.rolled_back`: Rolled a workflow back.
    WorkflowRolledBack,
    /// `run.replayed`: Replayed a run.
    RunReplayed,
    /// `runs.bulk_replayed`: Replayed dead-lettered runs.
    RunsBulkReplayed,
    /// `alert_rule.changed`: Changed an alert rule.
    AlertRuleChanged,
    /// `alert_rule.tested`: Sent a test alert.
    AlertRuleTested,
    /// `incident.acknowledged`: Acknowledged an alert.
    IncidentAcknowledged,
    /// `workflow.paused`: Paused a workflow.
    WorkflowPaused,
    /// `workflow.resumed`: Resumed a workflow.
    WorkflowResumed,
    /// `workflow.unpublished`: Unpublished a workflow.
    WorkflowUnpublished,
    /// `workflow.renamed`: Renamed a workflow.
    WorkflowRenamed,
    /// `workflow.duplicated`: Duplicated a workflow.
    WorkflowDuplicated,
    /// `workflow.deleted`: Deleted a workflow.
    WorkflowDeleted,
    /// `connection.reconnected`: Reconnected an app.
    ConnectionReconnected,
    /// `verifications.exported`: Exported verification outcomes.
    VerificationsExported,
    /// `workflow.tested`: Tested a workflow on a record.
    WorkflowTested,
    /// `run.step`: Ran a step.
    RunStep,
    /// `audit.exported`: Exported the audit log.
    AuditExported,
    /// `evidence.exported`: Downloaded an evidence pack.
    EvidenceExported,
    /// `workflow.reviewed`: Reviewed a workflow.
    WorkflowReviewed,
    /// `workflow.profile_changed`: Changed a workflow's inventory entry.
    WorkflowProfileChanged,
    /// `tenant.retention_changed`: Changed data retention.
    RetentionChanged,
    /// `tenant.field_class_changed`: Changed a field's classification.
    FieldClassChanged,
    /// `runs.payloads_purged`: Purged run payloads past retention.
    PayloadsPurged,
    /// `workflow.gate_run`: Ran the publish checklist.
    WorkflowGateRun,
}

impl AuditAction {
    /// Every action, for listings and tests.
    pub const ALL: [Self; 46] = [
        Self::UserLoggedIn,
        Self::UserLoggedOut,
        Self::UserInvited,
        Self::InviteAccepted,
        Self::UserPasswordReset,
        Self::UserRoleChanged,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::TenantCreated,
        Self::TenantSuspended,
        Self::TenantReactivated,
        Self::TenantDeleted,
        Self::OperatorCreated,
        Self::OperatorInvited,
        Self::ConnectionCreated,
        Self::ConnectionTested,
        Self::ConnectionRevoked,
        Self::SandboxSamplesCreated,
        Self::WorkflowCreated,
        Self::WorkflowDraftSaved,
        Self::WorkflowConnectionsSet,
        Self::WorkflowPublished,
        Self::WorkflowRolledBack,
        Self::RunReplayed,
        Self::RunsBulkReplayed,
        Self::AlertRuleChanged,
        Self::AlertRuleTested,
        Self::IncidentAcknowledged,
        Self::WorkflowPaused,
        Self::WorkflowResumed,
        Self::WorkflowUnpublished,
        Self::WorkflowRenamed,
        Self::WorkflowDuplicated,
        Self::WorkflowDeleted,
        Self::ConnectionReconnected,
        Self::VerificationsExported,
        Self::WorkflowTested,
        Self::RunStep,
        Self::AuditExported,
        Self::EvidenceExported,
        Self::WorkflowReviewed,
        Self::WorkflowProfileChanged,
        Self::RetentionChanged,
        Self::FieldClassChanged,
        Self::PayloadsPurged,
        Self::WorkflowGateRun,
    ];

    /// The stable code stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserLoggedIn => "user.logged_in",
            Self::UserLoggedOut => "user.logged_out",
            Self::UserInvited => "user.invited",
            Self::InviteAccepted => "invite.accepted",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::TenantCreated => "tenant.created",
            Self::TenantSuspended => "tenant.suspended",
            Self::TenantReactivated => "tenant.reactivated",
            Self::TenantDeleted => "tenant.deleted",
            Self::OperatorCreated => "operator.created",
            Self::OperatorInvited => "operator.invited",
            Self::ConnectionCreated => "connection.created",
            Self::ConnectionTested => "connection.tested",
            Self::ConnectionRevoked => "connection.revoked",
            Self::SandboxSamplesCreated => "sandbox.samples_created",
            Self::WorkflowCreated => "workflow.created",
            Self::WorkflowDraftSaved => "workflow.draft_saved",
            Self::WorkflowConnectionsSet => "workflow.connections_set",
            Self::WorkflowPublished => "workflow.published",
            Self::WorkflowRolledBack => "workflow.rolled_back",
            Self::RunReplayed => "run.replayed",
            Self::RunsBulkReplayed => "runs.bulk_replayed",
            Self::AlertRuleChanged => "alert_rule.changed",
            Self::AlertRuleTested => "alert_rule.tested",
            Self::IncidentAcknowledged => "incident.acknowledged",
            Self::WorkflowPaused => "workflow.paused",
            Self::WorkflowResumed => "workflow.resumed",
            Self::WorkflowUnpublished => "workflow.unpublished",
            Self::WorkflowRenamed => "workflow.renamed",
            Self::WorkflowDuplicated => "workflow.duplicated",
            Self::WorkflowDeleted => "workflow.deleted",
            Self::ConnectionReconnected => "connection.reconnected",
            Self::VerificationsExported => "verifications.exported",
            Self::WorkflowTested => "workflow.tested",
            Self::RunStep => "run.step",
            Self::AuditExported => "audit.exported",
            Self::EvidenceExported => "evidence.exported",
            Self::WorkflowReviewed => "workflow.reviewed",
            Self::WorkflowProfileChanged => "workflow.profile_changed",
            Self::RetentionChanged => "tenant.retention_changed",
            Self::FieldClassChanged => "tenant.field_class_changed",
            Self::PayloadsPurged => "runs.payloads_purged",
            Self::WorkflowGateRun => "workflow.gate_run",
        }
    }

    /// A human sentence for the audit pages.
    pub fn label(self) -> &'static str {
        match self {
            Self::UserLoggedIn => "Signed in",
            Self::UserLoggedOut => "Signed out",
            Self::UserInvited => "Invited a person",
            Self::InviteAccepted => "Accepted an invite",
            Self::UserPasswordReset => "Reset their password",
            Self::UserRoleChanged => "Changed a role",
            Self::UserDeactivated => "Deactivated a person",
            Self::UserReactivated => "Reactivated a person",
            Self::TenantCreated => "Created a tenant",
            Self::TenantSuspended => "Suspended a tenant",
            Self::TenantReactivated => "Reactivated a tenant",
            Self::TenantDeleted => "Deleted a tenant",
            Self::OperatorCreated => "Created an operator",
            Self::OperatorInvited => "Invited an operator",
            Self::ConnectionCreated => "Connected an app",
            Self::ConnectionTested => "Tested a connection",
            Self::ConnectionRevoked => "Revoked a connection",
            Self::SandboxSamplesCreated => "Created sample contacts",
            Self::WorkflowCreated => "Created a workflow",
            Self::WorkflowDraftSaved => "Saved a workflow draft",
            Self::WorkflowConnectionsSet => "Chose a workflow's connections",
            Self::WorkflowPublished => "Published a workflow version",
            Self::WorkflowRolledBack => "Rolled a workflow back",
            Self::RunReplayed => "Replayed a run",
            Self::RunsBulkReplayed => "Replayed dead-lettered runs",
            Self::AlertRuleChanged => "Changed an alert rule",
            Self::AlertRuleTested => "Sent a test alert",
            Self::IncidentAcknowledged => "Acknowledged an alert",
            Self::WorkflowPaused => "Paused a workflow",
            Self::WorkflowResumed => "Resumed a workflow",
            Self::WorkflowUnpublished => "Unpublished a workflow",
            Self::WorkflowRenamed => "Renamed a workflow",
            Self::WorkflowDuplicated => "Duplicated a workflow",
            Self::WorkflowDeleted => "Deleted a workflow",
            Self::ConnectionReconnected => "Reconnected an app",
            Self::VerificationsExported => "Exported verification outcomes",
            Self::WorkflowTested => "Tested a workflow on a record",
            Self::RunStep => "Ran a step",
            Self::AuditExported => "Exported the audit log",
            Self::EvidenceExported => "Downloaded an evidence pack",
            Self::WorkflowReviewed => "Reviewed a workflow",
            Self::WorkflowProfileChanged => "Changed a workflow's inventory entry",
            Self::RetentionChanged => "Changed data retention",
            Self::FieldClassChanged => "Changed a field's classification",
            Self::PayloadsPurged => "Purged run payloads past retention",
            Self::WorkflowGateRun => "Ran the publish checklist",
        }
    }

    /// The action a stored code names, if any.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == code)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut codes: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len());
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
            assert!(!a.label().is_empty());
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
