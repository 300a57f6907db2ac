//! The `Connector` trait and its call context, and the one place that
//! sends a connector's HTTP request: rate limit, send, log, map the answer
//! to `ConnectorError`, honour 429s. The list of connectors is in
//! `registry`, which imports the connectors; they import only this.

use crate::{ConnectorError, HttpClient, RateLimiter};
use ferry_core::Credentials;
use ferry_core::catalog::ConnectorDef;
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Everything one call needs. The credentials are already fresh.
#[derive(Clone)]
pub struct CallContext {
    /// The connection's id (rate-limit and log key).
    pub connection_id: String,
    /// The remote base URL (HubSpot's, a simulator's, a tenant's API).
    pub base_url: Url,
    /// The connection's secrets.
    pub credentials: Credentials,
    /// The guarded HTTP client.
    pub http: HttpClient,
    /// The limiter shared by all calls of this connection.
    pub limiter: RateLimiter,
    /// For calls with side effects: repeated calls with the same key have
    /// one effect at the remote end.
    pub idempotency_key: Option<String>,
    /// Every HTTP exchange of the calls made with this context, in order
    /// (the run engine records them per attempt).
    pub log: CallLog,
    /// The remote's limit for this account when it differs from the
    /// connector's default (a higher HubSpot tier).
    pub rate_limit: Option<ferry_core::catalog::RateLimit>,
}

/// A shared list of HTTP exchanges.
pub type CallLog = Arc<std::sync::Mutex<Vec<HttpCall>>>;

fn record(ctx: &CallContext, calls: &mut Vec<HttpCall>, call: HttpCall) {
    if let Ok(mut log) = ctx.log.lock() {
        log.push(call.clone());
    }
    calls.push(call);
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("connection_id", &self.connection_id)
            .field("base_url", &self.base_url.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// One HTTP exchange, for logs and run records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpCall {
    /// Method.
    pub method: String,
    /// Path (no query string: it could hold identifiers).
    pub path: String,
    /// Status, or 0 without an answer.
    pub status: u16,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Attempt number within the call (429s are retried).
    pub attempt: u32,
}

/// A connector: its definition and its calls.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// What it is (catalog data).
    fn def(&self) -> &'static ConnectorDef;

    /// A cheap real call that proves the connection works; returns a short
    /// description of what answered.
    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError>;

    /// Runs an action with a JSON input; returns its JSON output.
    async fn call(
        &self,
        action: &str,
        input: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ConnectorError>;

    /// The newest records a trigger of this connector is about (a CRM's
    /// latest contacts), for the builder's test: each flat, with its `id`.
    /// None when the connector has no such list.
    async fn recent(
        &self,
        _ctx: &CallContext,
        _limit: usize,
    ) -> Result<Vec<Value>, ConnectorError> {
        Ok(vec![])
    }
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// `Authorization: Bearer …`
    Bearer(&'a str),
    /// `Authorization: Token token=…`
    Token(&'a str),
    /// Nothing.
    None,
}

/// Sends one JSON request under the connection's rate limit; 429s are
/// honoured (Retry-After, or HubSpot's policy window) and retried up to
/// three times. Returns the status and JSON body of a 2xx answer.
pub async fn send(
    def: &ConnectorDef,
    ctx: &CallContext,
    method: Method,
    path: &str,
    body: Option<&Value>,
    auth: Auth<'_>,
    calls: &mut Vec<HttpCall>,
) -> Result<(u16, Value), ConnectorError> {
    let url = join(&ctx.base_url, path)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if let Some(limit) = ctx.rate_limit.or(def.rate_limit) {
            ctx.limiter
                .acquire(&ctx.connection_id, limit, Duration::from_secs(60))
                .await?;
        }
        let mut request = ctx.http.request(method.clone(), &url)?;
        request = match auth {
            Auth::Bearer(t) => request.bearer_auth(t),
            Auth::Token(t) => request.header("Authorization", format!("Token token={t}")),
            Auth::None => request,
        };
        if let Some(key) = &ctx.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        let started = Instant::now();
        let outcome = request.send().await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let response = match outcome {
            Ok(r) => r,
            Err(e) => {
                record(
                    ctx,
                    calls,
                    HttpCall {
                        method: method.to_string(),
                        path: url.path().to_owned(),
                        status: 0,
                        duration_ms,
                        attempt,
                    },
                );
                tracing::warn!(connector = %def.key, connection_id = %ctx.connection_id, method = %method, path = %url.path(), duration_ms, attempt, "connector call failed without an answer");
                return Err(e.into());
            }
        };
        let status = response.status().as_u16();
        record(
            ctx,
            calls,
            HttpCall {
                method: method.to_string(),
                path: url.path().to_owned(),
                status,
                duration_ms,
                attempt,
            },
        );
        tracing::info!(connector = %def.key, connection_id = %ctx.connection_id, method = %method, path = %url.path(), status, duration_ms, attempt, "connector call");
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match ctx.http.read_body(response).await {
            Ok(body) => body,
            // An error status classifies the answer without its body.
            Err(ConnectorError::TooLarge { .. }) if !(200..=299).contains(&status) => Vec::new(),
            Err(e) => return Err(e),
        };
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = || error_category(&json);
        match status {
            200..=299 => return Ok((status, json)),
            429 => {
                let wait =
                    retry_after.unwrap_or(match json.get("policyName").and_then(Value::as_str) {
                        Some("SECONDLY") => Duration::from_secs(1),
                        _ => Duration::from_secs(10),
                    });
                if attempt >= 3 || wait > Duration::from_secs(30) {
                    return Err(ConnectorError::RateLimited {
                        retry_after: Some(wait),
                    });
                }
                // Back off a little more each time, with jitter.
                let jitter = Duration::from_millis(rand::random::<u64>() % 250);
                tokio::time::sleep(wait * attempt + jitter).await;
            }
            401 => return Err(ConnectorError::Unauthorized(message())),
            403 => return Err(ConnectorError::Forbidden(message())),
            404 => return Err(ConnectorError::NotFound),
            400..=499 => {
                return Err(ConnectorError::Rejected {
                    status,
                    message: message(),
                });
            }
            _ => {
                return Err(ConnectorError::Remote {
                    status,
                    message: message(),
                });
            }
        }
    }
}

/// The machine category of an error answer, for messages and logs: the
/// codes the remote system gives (HubSpot's `category` and the `error`
/// codes inside its validation message, `error.type`, `error.code`,
/// `errors[].code`, an OAuth `error`), each only if it looks like a code
/// (see `is_code`: never a name or a date), at most four. Never the remote
/// system's prose, which may quote personal data back.
pub fn error_category(body: &Value) -> String {
    // A machine code looks like one: a letter first, then letters,
    // digits, `_` or `.`, and either an underscore (`invalid_grant`) or all
    // capitals (`VALIDATION_ERROR`, `FORBIDDEN`) — so a name ("Lovelace")
    // or a date ("1815-12-10") a provider puts in a code field is dropped.
    fn is_code(s: &str) -> bool {
        (1..=64).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            && (s.contains('_') || !s.bytes().any(|b| b.is_ascii_lowercase()))
    }
    let mut codes: Vec<String> = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(code) = v.and_then(Value::as_str)
            && is_code(code)
            && !codes.iter().any(|c| c == code)
            && codes.len() < 4
        {
            codes.push(code.to_owned());
        }
    };
    add(body.get("category"));
    add(body.pointer("/error/type"));
    add(body.pointer("/error/code"));
    add(body.get("code"));
    add(body.get("error"));
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(e.get("code"));
        add(e.get("error"));
    }
    // HubSpot puts the details of a validation error, as JSON, inside its
    // message: "Property values were not valid: [{…"error":"PROPERTY_DOESNT_EXIST"…}]".
    let embedded: Option<Value> = body
        .get("message")
        .and_then(Value::as_str)
        .and_then(|m| m.find('[').map(|i| &m[i..]))
        .and_then(|list| serde_json::from_str(list).ok());
    for e in embedded
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(e.get("error"));
        add(e.get("code"));
    }
    if codes.is_empty() {
        "no error category given".to_owned()
    } else {
        codes.join(", ")
    }
}

/// Joins a path to a base URL that may itself have a path (a simulator
/// mounted under `/sandbox/hubspot`).
pub fn join(base: &Url, path: &str) -> Result<Url, ConnectorError> {
    let mut joined = base.as_str().trim_end_matches('/').to_owned();
    joined.push('/');
    joined.push_str(path.trim_start_matches('/'));
    Url::parse(&joined).map_err(|_| ConnectorError::Config(format!("bad URL path {path}")))
}

/// A required text input.
pub fn input_str<'a>(input: &'a Value, name: &str) -> Result<&'a str, ConnectorError> {
    input
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::Config(format!("the input field {name} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::catalog::ConnectorKey;

    #[test]
    fn join_keeps_the_base_path() {
        let base = Url::parse("http://127.0.0.1:8080/sandbox/hubspot").unwrap();
        assert_eq!(
            join(&base, "/crm/v3/objects/contacts").unwrap().as_str(),
            "http://127.0.0.1:8080/sandbox/hubspot/crm/v3/objects/contacts"
        );
        let base = Url::parse("https://api.hubapi.com/").unwrap();
        assert_eq!(
            join(&base, "crm/v3").unwrap().as_str(),
            "https://api.hubapi.com/crm/v3"
        );
    }

    fn context(addr: std::net::SocketAddr, limit: usize) -> CallContext {
        CallContext {
            connection_id: "con_test".into(),
            base_url: Url::parse(&format!("http://{addr}/")).unwrap(),
            credentials: Credentials::default(),
            http: HttpClient::new(
                crate::NetworkPolicy {
                    allow_private: true,
                    ..crate::NetworkPolicy::default()
                },
                Duration::from_secs(10),
            )
            .unwrap()
            .with_body_limit(limit),
            limiter: RateLimiter::memory(),
            idempotency_key: None,
            log: CallLog::default(),
            rate_limit: None,
        }
    }

    async fn call(
        answer: crate::test_server::Answer,
        limit: usize,
    ) -> Result<(u16, Value), ConnectorError> {
        let addr = crate::test_server::http(answer).await;
        send(
            ConnectorKey::Http.def(),
            &context(addr, limit),
            Method::POST,
            "/things",
            Some(&serde_json::json!({ "a": 1 })),
            Auth::None,
            &mut Vec::new(),
        )
        .await
    }

    /// What a provider says in prose may quote personal data; errors carry
    /// the status and machine codes only.
    #[tokio::test]
    async fn error_messages_never_echo_the_remote_body() {
        use crate::test_server::json;
        let prose = "Contact Ada Lovelace (ada@example.com, born 1815-12-10) already exists";
        for (status, body) in [
            (
                400,
                format!(
                    r#"{{"status":"error","message":"{prose}","category":"VALIDATION_ERROR"}}"#
                ),
            ),
            (401, format!(r#"{{"message":"{prose}"}}"#)),
            (
                403,
                format!(r#"{{"error":{{"type":"forbidden","message":"{prose}"}}}}"#),
            ),
            (
                409,
                format!(
                    r#"{{"message":"{prose}","category":"CONFLICT","errors":[{{"code":"{prose}"}}]}}"#
                ),
            ),
            (
                422,
                format!(r#"{{"error":{{"type":"validation_error","message":"{prose}"}}}}"#),
            ),
            (500, format!(r#"{{"message":"{prose}"}}"#)),
            (503, prose.to_owned()),
        ] {
            let err = call(json(status, &body), 1 << 20).await.unwrap_err();
            let text = err.to_string();
            assert!(
                !text.contains("Ada") && !text.contains("ada@") && !text.contains("1815"),
                "{status}: {text}"
            );
            assert!(
                text.contains(&status.to_string()) || status == 401 || status == 403,
                "{text}"
            );
        }
        let err = call(
            json(
                400,
                r#"{"status":"error","message":"x","category":"VALIDATION_ERROR"}"#,
            ),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            ConnectorError::Rejected {
                status: 400,
                message: "VALIDATION_ERROR".into()
            }
        );
    }

    #[test]
    fn error_categories_are_machine_codes_only() {
        // HubSpot's validation error names the missing property's code
        // inside its message; the code is kept, the prose is not.
        let hubspot = serde_json::json!({
            "status": "error",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"ada_lovelace\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"ada_lovelace\"}]",
            "correlationId": "0f1e",
            "category": "VALIDATION_ERROR",
        });
        assert_eq!(
            error_category(&hubspot),
            "VALIDATION_ERROR, PROPERTY_DOESNT_EXIST"
        );
        assert_eq!(
            error_category(
                &serde_json::json!({ "error": "invalid_grant", "error_description": "token of ada@example.com revoked" })
            ),
            "invalid_grant"
        );
        assert_eq!(
            error_category(&serde_json::json!({ "error": "ada@example.com is not allowed" })),
            "no error category given"
        );
        assert_eq!(error_category(&Value::Null), "no error category given");
        // Personal data in a code field is not a code.
        for not_a_code in ["Lovelace", "1815-12-10", "ada.lovelace", "+442079460018"] {
            let got = error_category(&serde_json::json!({ "code": not_a_code }));
            assert_eq!(got, "no error category given", "{not_a_code} kept");
        }
        assert_eq!(
            error_category(
                &serde_json::json!({ "error": { "type": "FORBIDDEN" }, "code": "rate_limit" })
            ),
            "FORBIDDEN, rate_limit"
        );
        let long = "A".repeat(65);
        assert_eq!(
            error_category(&serde_json::json!({ "code": long })),
            "no error category given"
        );
    }

    #[tokio::test]
    async fn bodies_over_the_limit_fail_the_call_without_echo() {
        use crate::test_server::{Answer, json};
        let err = call(Answer::EndlessChunked, 4096).await.unwrap_err();
        assert_eq!(err, ConnectorError::TooLarge { limit_bytes: 4096 });
        let big = format!(
            r#"{{"name":"Ada Lovelace","padding":"{}"}}"#,
            "x".repeat(8192)
        );
        let err = call(json(200, &big), 4096).await.unwrap_err();
        assert_eq!(err, ConnectorError::TooLarge { limit_bytes: 4096 });
        assert!(!err.to_string().contains("Ada"));
        // Under the limit, the body is the call's output.
        let (status, body) = call(json(201, r#"{"id":"7"}"#), 4096).await.unwrap();
        assert_eq!((status, body), (201, serde_json::json!({ "id": "7" })));
        // An error status is classified by its status even when its body is too long.
        let err = call(json(503, &big), 4096).await.unwrap_err();
        assert!(
            matches!(err, ConnectorError::Remote { status: 503, .. }),
            "{err:?}"
        );
    }
}
