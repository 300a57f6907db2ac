//! The identity-verification provider: create checks (with an idempotency
//! key), read them back.

use crate::ConnectorError;
use crate::connector::{Auth, CallContext, Connector, input_str, send};
use ferry_core::catalog::{ConnectorDef, ConnectorKey};
use reqwest::Method;
use serde_json::{Value, json};

/// The verification connector.
pub struct Verification;

fn key(ctx: &CallContext) -> Result<&str, ConnectorError> {
    ctx.credentials
        .api_key()
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
                    &format!("/v1/checks/{}", crate::path_segment(id)),
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

/// hex(HMAC-SHA256(secret, body)) compared in constant time with the
/// `X-Signature` the provider sent.
pub fn verify_result_signature(
    secret: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), crate::webhook::SignatureError> {
    use hmac::Mac;
    if secret.is_empty() || signature.is_empty() {
        return Err(crate::webhook::SignatureError::Missing);
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .map_err(|_| crate::webhook::SignatureError::Missing)?;
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        signature.trim().to_ascii_lowercase().as_bytes(),
    )) {
        Ok(())
    } else {
        Err(crate::webhook::SignatureError::Mismatch)
    }
}
