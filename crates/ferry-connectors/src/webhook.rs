//! The generic connectors: outbound HTTP/REST, inbound webhook (Standard
//! Webhooks signatures), and SMTP email.

use crate::ConnectorError;
use crate::connector::{Auth, CallContext, Connector, input_str, send};
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
        let token = ctx.credentials.api_key().unwrap_or_default();
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
        let token = ctx.credentials.api_key().unwrap_or_default();
        let auth = if token.is_empty() {
            Auth::None
        } else {
            Auth::Bearer(token)
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
            .signing_secret()
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
        let target = SmtpTarget::resolve(&ctx.base_url, ctx.http.policy()).await?;
        let transport = smtp_transport(&target, ctx)?;
        let (host, port) = (&target.host, target.addr.port());
        match transport.test_connection().await {
            Ok(true) => Ok(format!("The SMTP server at {host}:{port} answered.")),
            Ok(false) => Err(ConnectorError::Network(format!(
                "the SMTP server at {host}:{port} did not answer"
            ))),
            Err(e) => Err(ConnectorError::Network(smtp_error(&e))),
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
                    message: format!("{field}: is not an email address"),
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
        let target = SmtpTarget::resolve(&ctx.base_url, ctx.http.policy()).await?;
        let transport = smtp_transport(&target, ctx)?;
        let response = transport
            .send(message)
            .await
            .map_err(|e| ConnectorError::Remote {
                status: 502,
                message: smtp_error(&e),
            })?;
        Ok(json!({ "accepted": response.is_positive() }))
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    ImplicitTls,
    /// `smtp://`: STARTTLS, required (port 587 by default).
    StartTls,
    /// `smtp://…?tls=none`: plain text (a local relay).
    None,
}

/// Where the SMTP connector connects: the one address that passed the SSRF
/// guard (the host is resolved once; lettre is given this IP, so it cannot
/// resolve the name again to somewhere else), and the host name the
/// server's TLS certificate is verified against (and sent as SNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    /// The checked address to dial.
    pub addr: std::net::SocketAddr,
    /// The host as written in the URL (without IPv6 brackets), for TLS.
    pub host: String,
    /// How the connection is secured.
    pub security: SmtpSecurity,
}

impl SmtpTarget {
    /// The target for a connection's URL, resolved by the system resolver.
    pub async fn resolve(
        url: &url::Url,
        policy: &crate::NetworkPolicy,
    ) -> Result<Self, ConnectorError> {
        Self::resolve_with(url, policy, crate::net::system_resolve).await
    }

    /// [`Self::resolve`] with the resolver given (tests).
    pub async fn resolve_with<F, Fut>(
        url: &url::Url,
        policy: &crate::NetworkPolicy,
        resolve: F,
    ) -> Result<Self, ConnectorError>
    where
        F: FnOnce(String, u16) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>>,
    {
        let host = url
            .host_str()
            .ok_or_else(|| ConnectorError::Config("the SMTP URL has no host".into()))?;
        let security = if url.scheme() == "smtps" {
            SmtpSecurity::ImplicitTls
        } else if url.query_pairs().any(|(k, v)| k == "tls" && v == "none") {
            SmtpSecurity::None
        } else {
            SmtpSecurity::StartTls
        };
        let port = url
            .port()
            .unwrap_or(if security == SmtpSecurity::ImplicitTls {
                465
            } else {
                587
            });
        let addr = policy.resolve_checked_with(host, port, resolve).await?;
        Ok(Self {
            addr,
            host: host.trim_matches(|c| c == '[' || c == ']').to_owned(),
            security,
        })
    }
}

/// The SMTP transport to a checked target: `smtps://host[:465]` is implicit
/// TLS; `smtp://host[:587]` requires STARTTLS unless the URL says
/// `?tls=none` (a local relay). The certificate must name the URL's host.
fn smtp_transport(
    target: &SmtpTarget,
    ctx: &CallContext,
) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, ConnectorError> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let parameters = || {
        TlsParameters::new(target.host.clone())
            .map_err(|e| ConnectorError::Config(ConnectorError::short(&e.to_string())))
    };
    let tls = match target.security {
        SmtpSecurity::ImplicitTls => Tls::Wrapper(parameters()?),
        SmtpSecurity::StartTls => Tls::Required(parameters()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.addr.ip().to_string())
            .port(target.addr.port())
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(10)));
    if let (Some(user), Some(pass)) = (&ctx.credentials.username, &ctx.credentials.api_key) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            user.clone(),
            pass.expose().to_owned(),
        ));
    }
    Ok(builder.build())
}

/// What went wrong with the SMTP server, in Ferry's words: the reply code,
/// never the server's text (which may quote addresses back).
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    if let Some(code) = e.status() {
        if e.is_permanent() {
            format!("the SMTP server refused ({code})")
        } else {
            format!("the SMTP server deferred ({code})")
        }
    } else if e.is_timeout() {
        "the SMTP server did not answer in time".into()
    } else if e.is_tls() {
        "TLS with the SMTP server failed".into()
    } else if e.is_response() {
        "the SMTP server's answer was not understood".into()
    } else if e.is_client() {
        "the SMTP session failed (does the server offer STARTTLS?)".into()
    } else {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return format!("could not reach the SMTP server ({})", io.kind());
            }
            source = s.source();
        }
        "could not reach the SMTP server".into()
    }
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

    /// A resolver that answers `addrs` (with the port asked for), once.
    fn resolved_to(
        addrs: &[&str],
    ) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<std::net::SocketAddr>>>
    {
        let ips: Vec<std::net::IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
        move |_, port| {
            std::future::ready(Ok(ips
                .into_iter()
                .map(|ip| std::net::SocketAddr::new(ip, port))
                .collect()))
        }
    }

    #[tokio::test]
    async fn smtp_dials_the_checked_address_and_verifies_the_host_name() {
        let p = crate::NetworkPolicy::default();
        let url = |s: &str| url::Url::parse(s).unwrap();
        let target = SmtpTarget::resolve_with(
            &url("smtps://mail.example.com"),
            &p,
            resolved_to(&["93.184.216.34", "93.184.216.35"]),
        )
        .await
        .unwrap();
        assert_eq!(
            target,
            SmtpTarget {
                addr: "93.184.216.34:465".parse().unwrap(),
                host: "mail.example.com".into(),
                security: SmtpSecurity::ImplicitTls,
            }
        );
        let target = SmtpTarget::resolve_with(
            &url("smtp://mail.example.com:2525"),
            &p,
            resolved_to(&["2606:4700:4700::1111"]),
        )
        .await
        .unwrap();
        assert_eq!(target.addr, "[2606:4700:4700::1111]:2525".parse().unwrap());
        assert_eq!(target.security, SmtpSecurity::StartTls);
        let target = SmtpTarget::resolve_with(
            &url("smtps://[2606:4700:4700::1111]"),
            &p,
            resolved_to(&["127.0.0.1"]), // an IP literal is not resolved
        )
        .await
        .unwrap();
        assert_eq!(target.host, "2606:4700:4700::1111");
        assert_eq!(target.addr, "[2606:4700:4700::1111]:465".parse().unwrap());

        // A name with one private answer is refused, whatever else it has.
        for private in [
            &["93.184.216.34", "127.0.0.1"][..],
            &["169.254.169.254"],
            &["64:ff9b::a00:1"],
            &["2002:a9fe:a9fe::1"],
        ] {
            let refused =
                SmtpTarget::resolve_with(&url("smtp://mail.example.com"), &p, resolved_to(private))
                    .await;
            assert!(
                matches!(refused, Err(ConnectorError::Blocked(_))),
                "{private:?}: {refused:?}"
            );
        }
    }

    /// lettre is given the checked IP, not the name: a name that does not
    /// resolve at all (`.invalid`) is reached at the address it was checked as.
    #[tokio::test]
    async fn the_smtp_transport_connects_to_the_checked_ip() {
        let server = crate::test_server::smtp().await;
        let policy = crate::NetworkPolicy {
            allow_private: true,
            ..crate::NetworkPolicy::default()
        };
        let url = url::Url::parse(&format!(
            "smtp://mail.ferry-test.invalid:{}?tls=none",
            server.port()
        ))
        .unwrap();
        let target = SmtpTarget::resolve_with(&url, &policy, resolved_to(&["127.0.0.1"]))
            .await
            .unwrap();
        assert_eq!(target.addr, server);
        let ctx = CallContext {
            connection_id: "con_smtp".into(),
            base_url: url.clone(),
            credentials: ferry_core::Credentials::default(),
            http: crate::HttpClient::new(policy, std::time::Duration::from_secs(5)).unwrap(),
            limiter: crate::RateLimiter::memory(),
            idempotency_key: None,
            log: crate::connector::CallLog::default(),
            rate_limit: None,
        };
        let transport = smtp_transport(&target, &ctx).unwrap();
        assert!(matches!(transport.test_connection().await, Ok(true)));
        // Left to resolve the name itself, the connection fails.
        assert!(matches!(
            Smtp.test(&ctx).await,
            Err(ConnectorError::Network(_))
        ));
    }
}
