//! The SMTP connector against a real SMTP server: connection test, sending,
//! TLS required unless the URL says otherwise, and the SSRF guard.

use ferry_connectors::CallContext;
use ferry_connectors::{Connector, ConnectorError, HttpClient, NetworkPolicy, RateLimiter};
use ferry_core::Credentials;
use ferry_tests::SmtpSink;
use serde_json::json;
use std::time::Duration;

fn context(url: &str, allow_private: bool) -> CallContext {
    CallContext {
        connection_id: "con_smtp".into(),
        base_url: url.parse().unwrap(),
        credentials: Credentials {
            username: Some("firm@acme.test".into()),
            ..Credentials::default()
        },
        http: HttpClient::new(
            NetworkPolicy {
                allow_private,
                allowed_origins: Vec::new(),
            },
            Duration::from_secs(10),
        )
        .unwrap(),
        limiter: RateLimiter::memory(),
        idempotency_key: None,
        log: Default::default(),
        rate_limit: None,
    }
}

#[tokio::test]
async fn the_smtp_connector_sends_through_a_real_server() {
    let sink = SmtpSink::start().await.unwrap();
    let smtp = ferry_connectors::webhook::Smtp;
    let local = format!("smtp://127.0.0.1:{}?tls=none", sink.port());

    // The SSRF guard applies to SMTP hosts too.
    assert!(matches!(
        smtp.test(&context(&local, false)).await,
        Err(ConnectorError::Blocked(_))
    ));
    assert!(smtp.test(&context(&local, true)).await.is_ok());
    // Without `tls=none`, STARTTLS is required: a plain server is refused.
    let strict = format!("smtp://127.0.0.1:{}", sink.port());
    assert!(
        smtp.call(
            "send_email",
            &json!({ "to": "a@example.com", "subject": "s", "body": "b" }),
            &context(&strict, true)
        )
        .await
        .is_err()
    );

    let out = smtp
        .call("send_email", &json!({ "to": "client@example.com", "subject": "Your identity check", "body": "Thank you." }), &context(&local, true))
        .await
        .unwrap();
    assert_eq!(out["accepted"], true);
    let mail = sink
        .messages()
        .into_iter()
        .find(|m| m.to.iter().any(|t| t == "client@example.com"))
        .expect("delivered");
    assert_eq!(mail.from, "firm@acme.test");
    assert_eq!(mail.subject, "Your identity check");
    assert!(mail.body.contains("Thank you."));

    let bad = smtp
        .call(
            "send_email",
            &json!({ "to": "not an address", "subject": "s", "body": "b" }),
            &context(&local, true),
        )
        .await;
    assert!(
        matches!(bad, Err(ConnectorError::Rejected { status: 422, .. })),
        "{bad:?}"
    );
    assert_eq!(sink.messages().len(), 1, "nothing else was sent");
}
