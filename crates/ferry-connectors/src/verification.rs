//! The identity-verification provider: create checks (with an idempotency
//! key), read them back.

use crate::ConnectorError;
use crate::registry::{Auth, CallContext, Connector, input_str, send};
use ferry_core::catalog::{ConnectorDef, ConnectorKey};
use reqwest::Method;
use serde_json::{Value, json};

/// The verification connector.
pub struct Verification;

fn key(ctx: &CallContext) -> Result<&str, ConnectorError> {
    ctx.credentials
        .api_key
        .as_deref()
        .ok_or_else(|| ConnectorError::Config("the verification connection has no API key".into()))
}

#[async_trait::async_trait]
impl Connector for Verification {
    fn def(&self) -> &'static ConnectorDef {
        ConnectorKey::Verification.def()
    }

    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError> {
        let mut calls = Vec::new();
        let (_, body) = send(
            self.def(),
            ctx,
            Method::GET,
            "/v1/account",
            None,
            Auth::Token(key(ctx)?),
            &mut calls,
        )
        .await?;
        Ok(format!(
            "The provider accepted the API key (account {}).",
            body["id"].as_str().unwrap_or("?")
        ))
    }

    async fn call(
        &self,
        action: &str,
        input: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ConnectorError> {
        let mut calls = Vec::new();
        let auth = Auth::Token(key(ctx)?);
        match action {
            "create_check" => {
                if ctx.idempotency_key.is_none() {
                    return Err(ConnectorError::Config(
                        "creating a check needs an idempotency key".into(),
                    ));
                }
                let body = json!({
                    "first_name": input_str(input, "first_name")?,
                    "last_name": input_str(input, "last_name")?,
                    "email": input_str(input, "email")?,
                    "date_of_birth": input.get("date_of_birth"),
                    "document_type": input.get("document_type"),
                    "reference": input.get("reference"),
                });
                Ok(send(
                    self.def(),
                    ctx,
                    Method::POST,
                    "/v1/checks",
                    Some(&body),
                    auth,
                    &mut calls,
                )
                .await?
                .1)
            }
            "get_check" => {
                let id = input_str(input, "check_id")?;
                Ok(send(
                    self.def(),
                    ctx,
                    Method::GET,
                    &format!("/v1/checks/{id}"),
                    None,
                    auth,
                    &mut calls,
                )
                .await?
                .1)
            }
            other => Err(ConnectorError::Config(format!(
                "the verification provider has no action {other}"
            ))),
        }
    }
}
