//! HubSpot CRM: contacts through the CRM v3 API with an OAuth access token.

use crate::connector::{Auth, CallContext, Connector, HttpCall, input_str, send};
use crate::{ConnectorError, HttpClient};
use ferry_core::catalog::{ConnectorDef, ConnectorKey};
use reqwest::Method;
use serde_json::{Value, json};

/// The HubSpot connector.
pub struct HubSpot;

fn token(ctx: &CallContext) -> Result<&str, ConnectorError> {
    ctx.credentials
        .access_token()
        .ok_or_else(|| ConnectorError::Config("the HubSpot connection has no access token".into()))
}

#[async_trait::async_trait]
impl Connector for HubSpot {
    fn def(&self) -> &'static ConnectorDef {
        ConnectorKey::HubSpot.def()
    }

    async fn test(&self, ctx: &CallContext) -> Result<String, ConnectorError> {
        let mut calls = Vec::new();
        let (_, body) = send(
            self.def(),
            ctx,
            Method::GET,
            "/crm/v3/objects/contacts?limit=1",
            None,
            Auth::Bearer(token(ctx)?),
            &mut calls,
        )
        .await?;
        let n = body["results"].as_array().map_or(0, Vec::len);
        Ok(format!(
            "HubSpot answered: contacts API reachable ({n} record{} read).",
            if n == 1 { "" } else { "s" }
        ))
    }

    async fn recent(&self, ctx: &CallContext, limit: usize) -> Result<Vec<Value>, ConnectorError> {
        let mut calls = Vec::new();
        let body = json!({
            "sorts": [{ "propertyName": "createdate", "direction": "DESCENDING" }],
            "properties": ["firstname", "lastname", "email"],
            "limit": limit.clamp(1, 100),
        });
        let (_, found) = send(
            self.def(),
            ctx,
            Method::POST,
            "/crm/v3/objects/contacts/search",
            Some(&body),
            Auth::Bearer(token(ctx)?),
            &mut calls,
        )
        .await?;
        Ok(found["results"]
            .as_array()
            .map(|r| r.iter().map(flatten).collect())
            .unwrap_or_default())
    }

    async fn call(
        &self,
        action: &str,
        input: &Value,
        ctx: &CallContext,
    ) -> Result<Value, ConnectorError> {
        let mut calls: Vec<HttpCall> = Vec::new();
        let bearer = Auth::Bearer(token(ctx)?);
        match action {
            "get_contact" => {
                let id = input_str(input, "contact_id")?;
                let path = format!(
                    "/crm/v3/objects/contacts/{}?properties=firstname,lastname,email,phone,date_of_birth,country,identity_verification_status,identity_verification_ref",
                    urlencode(id)
                );
                let (_, record) = send(
                    self.def(),
                    ctx,
                    Method::GET,
                    &path,
                    None,
                    bearer,
                    &mut calls,
                )
                .await?;
                Ok(flatten(&record))
            }
            "update_contact" => {
                let id = input_str(input, "contact_id")?;
                let properties = input
                    .get("properties")
                    .and_then(Value::as_object)
                    .ok_or_else(|| ConnectorError::Config("properties must be an object".into()))?;
                let path = format!("/crm/v3/objects/contacts/{}", urlencode(id));
                let body = json!({ "properties": properties });
                let first = send(
                    self.def(),
                    ctx,
                    Method::PATCH,
                    &path,
                    Some(&body),
                    bearer,
                    &mut calls,
                )
                .await;
                let record = match first {
                    Err(ConnectorError::Rejected {
                        status: 400,
                        message,
                    }) if message.contains("PROPERTY_DOESNT_EXIST") => {
                        // Ferry's own properties (the outcome and its
                        // reference) are created on first use, then written.
                        for name in properties.keys() {
                            ensure_property(self.def(), ctx, name, bearer, &mut calls).await?;
                        }
                        send(
                            self.def(),
                            ctx,
                            Method::PATCH,
                            &path,
                            Some(&body),
                            bearer,
                            &mut calls,
                        )
                        .await?
                        .1
                    }
                    other => other?.1,
                };
                Ok(flatten(&record))
            }
            other => Err(ConnectorError::Config(format!(
                "HubSpot has no action {other}"
            ))),
        }
    }
}

/// A CRM record `{id, properties: {…}}` as one flat object `{id, …}`, the
/// shape of the catalog's output schema.
fn flatten(record: &Value) -> Value {
    let mut out = record
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(id) = record.get("id") {
        out.insert("id".into(), id.clone());
    }
    Value::Object(out)
}

/// Creates a text contact property unless it exists already.
async fn ensure_property(
    def: &ConnectorDef,
    ctx: &CallContext,
    name: &str,
    bearer: Auth<'_>,
    calls: &mut Vec<HttpCall>,
) -> Result<(), ConnectorError> {
    let path = format!("/crm/v3/properties/contacts/{}", urlencode(name));
    match send(def, ctx, Method::GET, &path, None, bearer, calls).await {
        Ok(_) => return Ok(()),
        Err(ConnectorError::NotFound) => {}
        Err(e) => return Err(e),
    }
    let label: String = name
        .split('_')
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<String>>()
        .join(" ");
    let body = json!({
        "name": name,
        "label": label,
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "description": "Written by Ferry",
    });
    match send(
        def,
        ctx,
        Method::POST,
        "/crm/v3/properties/contacts",
        Some(&body),
        bearer,
        calls,
    )
    .await
    {
        Ok(_) | Err(ConnectorError::Rejected { status: 409, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn urlencode(s: &str) -> String {
    crate::path_segment(s)
}

/// What HubSpot says about an access token: the portal and the scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The portal (hub) id.
    pub hub_id: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

/// `GET /oauth/v1/access-tokens/{token}`.
pub async fn token_info(
    http: &HttpClient,
    base: &url::Url,
    access_token: &str,
) -> Result<TokenInfo, ConnectorError> {
    let url = crate::connector::join(
        base,
        &format!("/oauth/v1/access-tokens/{}", urlencode(access_token)),
    )?;
    let response = http.request(Method::GET, &url)?.send().await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(ConnectorError::Unauthorized(format!(
            "HubSpot did not recognise the new access token ({status})"
        )));
    }
    let body: Value =
        serde_json::from_slice(&http.read_body(response).await?).unwrap_or(Value::Null);
    Ok(TokenInfo {
        hub_id: body["hub_id"]
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| body["hub_id"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        scopes: body["scopes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `DELETE /oauth/v1/refresh-tokens/{token}`: revokes the grant. A token
/// HubSpot no longer knows counts as revoked.
pub async fn revoke(
    http: &HttpClient,
    base: &url::Url,
    refresh_token: &str,
) -> Result<(), ConnectorError> {
    let url = crate::connector::join(
        base,
        &format!("/oauth/v1/refresh-tokens/{}", urlencode(refresh_token)),
    )?;
    let status = http
        .request(Method::DELETE, &url)?
        .send()
        .await?
        .status()
        .as_u16();
    match status {
        200..=299 | 404 => Ok(()),
        s => Err(ConnectorError::Remote {
            status: s,
            message: "revocation failed".into(),
        }),
    }
}

/// HubSpot's signature v3 of a request: base64(HMAC-SHA256(client secret,
/// method + full URI + body + timestamp)).
pub fn signature_v3(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: &str,
) -> String {
    use base64::Engine;
    use hmac::Mac;
    let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(client_secret.as_bytes())
    else {
        return String::new();
    };
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Verifies a HubSpot webhook: the timestamp within 5 minutes of `now_ms`,
/// and the v3 signature (compared in constant time) under one of `secrets`.
pub fn verify_v3(
    secrets: &[&str],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: &str,
    signature: &str,
    now_ms: i64,
) -> Result<(), crate::webhook::SignatureError> {
    use crate::webhook::SignatureError;
    let ts: i64 = timestamp_ms
        .trim()
        .parse()
        .map_err(|_| SignatureError::Missing)?;
    if signature.is_empty() {
        return Err(SignatureError::Missing);
    }
    if (now_ms - ts).abs() > 300_000 {
        return Err(SignatureError::Stale);
    }
    let matched = secrets.iter().any(|s| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            signature_v3(s, method, uri, body, timestamp_ms).as_bytes(),
            signature.as_bytes(),
        ))
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
