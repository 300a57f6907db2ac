//! The generic connectors: outbound HTTP/REST, inbound webhook (Standard
//! Webhooks signatures), and SMTP email.

use crate::ConnectorError;
use crate::registry::{Auth, CallContext, Connector, input_str, send};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ferry_core::catalog::{ConnectorDef, ConnectorKey};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

/// Generic outbound HTTP with a bearer token.
pub struct HttpApi;

#[async_trait::async_trait]
impl Connector for HttpApi {
    fn def(&self) -> &'static ConnectorDef {
        ConnectorKey::Http.def()
    }

    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError> {
        let token = ctx.credentials.api_key.as_deref().unwrap_or_default();
        let mut request = ctx.http.request(Method::GET, &ctx.base_url)?;
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let status = request.send().await?.status().as_u16();
        match status {
            401 | 403 => Err(ConnectorError::Unauthorized(format!(
                "the API answered {status} to the token"
            ))),
            500..=599 => Err(ConnectorError::Remote {
                status,
                message: "the API failed".into(),
            }),
            _ => Ok(format!("The API answered {status}.")),
        }
    }

    async fn call(
        &self,
        action: &str,
        input: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ConnectorError> {
        if action != "post_json" {
            return Err(ConnectorError::Config(format!(
                "HTTP has no action {action}"
            )));
        }
        let path = input_str(input, "path")?;
        let body = input.get("body").cloned().unwrap_or(Value::Null);
        let token = ctx.credentials.api_key.clone().unwrap_or_default();
        let auth = if token.is_empty() {
            Auth::None
        } else {
            Auth::Bearer(&token)
        };
        let mut calls = Vec::new();
        let (status, response) = send(
            self.def(),
            ctx,
            Method::POST,
            path,
            Some(&body),
            auth,
            &mut calls,
        )
        .await?;
        Ok(json!({ "status": status, "body": response }))
    }
}

/// Inbound webhooks: nothing to call, requests arrive signed.
pub struct InboundWebhook;

#[async_trait::async_trait]
impl Connector for InboundWebhook {
    fn def(&self) -> &'static ConnectorDef {
        ConnectorKey::Webhook.def()
    }

    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError> {
        if ctx
            .credentials
            .signing_secret
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            Ok("Ready to receive: senders sign requests with the connection's secret.".into())
        } else {
            Err(ConnectorError::Config(
                "the webhook connection has no signing secret".into(),
            ))
        }
    }

    async fn call(
        &self,
        action: &str,
        _: &Value,
        _: &CallContext,
    ) -> Result<Value, ConnectorError> {
        Err(ConnectorError::Config(format!(
            "an inbound webhook has no action {action}"
        )))
    }
}

/// Why a Standard Webhooks request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing or malformed.
    #[error("missing or malformed webhook-id, webhook-timestamp or webhook-signature header")]
    Missing,
    /// The timestamp is more than 5 minutes away.
    #[error("the webhook timestamp is outside the 5-minute tolerance")]
    Stale,
    /// No signature matches.
    #[error("no webhook signature matches")]
    Mismatch,
}

/// The `v1,<base64>` signature of Standard Webhooks for `id.timestamp.body`.
pub fn standard_webhook_signature(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = B64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Verifies a Standard Webhooks request (±5 minutes, constant-time compare,
/// any of the space-separated signatures).
pub fn verify_standard_webhook(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Missing)?;
    // An empty secret would make an empty HMAC key anyone can sign with.
    let key_text = secret.strip_prefix("whsec_").unwrap_or(secret);
    if key_text.is_empty() || id.is_empty() || signatures.is_empty() {
        return Err(SignatureError::Missing);
    }
    if (now_unix - ts).abs() > 300 {
        return Err(SignatureError::Stale);
    }
    let expected =
        standard_webhook_signature(secret, id, ts, body).ok_or(SignatureError::Missing)?;
    let matched = signatures.split_whitespace().any(|candidate| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            candidate.as_bytes(),
            expected.as_bytes(),
        ))
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Email through the tenant's SMTP server.
pub struct Smtp;

#[async_trait::async_trait]
impl Connector for Smtp {
    fn def(&self) -> &'static ConnectorDef {
        ConnectorKey::Smtp.def()
    }

    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError> {
        let (transport, host, port) = smtp_transport(ctx).await?;
        match transport.test_connection().await {
            Ok(true) => Ok(format!("The SMTP server at {host}:{port} answered.")),
            Ok(false) => Err(ConnectorError::Network(format!(
                "the SMTP server at {host}:{port} did not answer"
            ))),
            Err(e) => Err(ConnectorError::Network(ConnectorError::short(
                &e.to_string(),
            ))),
        }
    }

    async fn call(
        &self,
        action: &str,
        input: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ConnectorError> {
        use lettre::AsyncTransport;
        use lettre::message::{Mailbox, Message, header::ContentType};
        if action != "send_email" {
            return Err(ConnectorError::Config(format!(
                "email has no action {action}"
            )));
        }
        let parse = |field: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|_| ConnectorError::Rejected {
                    status: 422,
                    message: format!("{field}: '{text}' is not an email address"),
                })
        };
        let to = parse("to", input_str(input, "to")?)?;
        let from_text = input
            .get("from")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or(ctx
                .credentials
                .username
                .as_deref()
                .filter(|u| u.contains('@')))
            .unwrap_or("Ferry <ferry@localhost>");
        let from = parse("from", from_text)?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(input_str(input, "subject")?)
            .header(ContentType::TEXT_PLAIN)
            .body(input_str(input, "body")?.to_owned())
            .map_err(|e| ConnectorError::Rejected {
                status: 422,
                message: ConnectorError::short(&e.to_string()),
            })?;
        let (transport, _, _) = smtp_transport(ctx).await?;
        let response = transport
            .send(message)
            .await
            .map_err(|e| ConnectorError::Remote {
                status: 502,
                message: ConnectorError::short(&e.to_string()),
            })?;
        Ok(json!({ "accepted": response.is_positive() }))
    }
}

/// The SMTP transport for a connection's URL: `smtps://host[:465]` is
/// implicit TLS; `smtp://host[:587]` requires STARTTLS unless the URL says
/// `?tls=none` (a local relay). The host passes the SSRF guard first.
async fn smtp_transport(
    ctx: &CallContext,
) -> Result<
    (
        lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        String,
        u16,
    ),
    ConnectorError,
> {
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let url = &ctx.base_url;
    let host = url
        .host_str()
        .ok_or_else(|| ConnectorError::Config("the SMTP URL has no host".into()))?
        .to_owned();
    let implicit_tls = url.scheme() == "smtps";
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
    ctx.http.policy().check_host(&host, port).await?;
    let plain = url.query_pairs().any(|(k, v)| k == "tls" && v == "none");
    let builder = if implicit_tls {
        AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
    } else if plain {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &host,
        ))
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
    }
    .map_err(|e| ConnectorError::Config(ConnectorError::short(&e.to_string())))?;
    let mut builder = builder
        .port(port)
        .timeout(Some(std::time::Duration::from_secs(10)));
    if let (Some(user), Some(pass)) = (&ctx.credentials.username, &ctx.credentials.api_key) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.clone(),
            pass.clone(),
        ));
    }
    Ok((builder.build(), host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig =
            standard_webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body)
                .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        assert_eq!(
            verify_standard_webhook(
                secret,
                id,
                "1614265330",
                &format!("v1,bogus {sig}"),
                body,
                1_614_265_330
            ),
            Ok(())
        );
        assert_eq!(
            verify_standard_webhook(secret, id, "1614265330", &sig, body, 1_614_265_330 + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_standard_webhook(secret, id, "1614265330", &sig, b"{}", 1_614_265_330),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard_webhook(secret, "", "1614265330", &sig, body, 1_614_265_330),
            Err(SignatureError::Missing)
        );
        let empty_key = standard_webhook_signature("", id, 1_614_265_330, body).unwrap();
        for blank in ["", "whsec_"] {
            assert_eq!(
                verify_standard_webhook(blank, id, "1614265330", &empty_key, body, 1_614_265_330),
                Err(SignatureError::Missing)
            );
        }
    }
}
