//! OAuth 2.0 authorization code with PKCE and `state`, and the refresh
//! grant, through the `oauth2` crate. Client credentials go in the request
//! body, as HubSpot expects.

use crate::{ConnectorError, HttpClient};
use ferry_core::Secret;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use std::time::Duration;
use url::Url;

/// An OAuth application registered with a provider.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: Secret,
    /// Where users consent.
    pub authorize_url: Url,
    /// Where codes and refresh tokens become access tokens.
    pub token_url: Url,
    /// Ferry's callback.
    pub redirect_url: Url,
}

/// A consent request to send the user to.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The provider's consent URL, with state and PKCE challenge.
    pub url: Url,
    /// The state to match in the callback.
    pub state: String,
    /// The PKCE verifier to send with the code.
    pub pkce_verifier: String,
}

/// Tokens from the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, when one was (re)issued.
    pub refresh_token: Option<Secret>,
    /// The access token's lifetime.
    pub expires_in: Option<Duration>,
}

type Configured = oauth2::Client<
    oauth2::StandardErrorResponse<BasicErrorResponseType>,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

impl OAuthApp {
    fn client(&self) -> Configured {
        BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.client_secret.expose().to_owned()))
            .set_auth_uri(AuthUrl::from_url(self.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()))
            .set_redirect_uri(RedirectUrl::from_url(self.redirect_url.clone()))
            .set_auth_type(AuthType::RequestBody)
    }

    /// Builds the consent URL for `scopes`, with a random state and a PKCE
    /// (S256) challenge.
    pub fn authorize(&self, scopes: &[String]) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client()
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        Authorization {
            url,
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges a code (with its PKCE verifier) for tokens.
    pub async fn exchange(
        &self,
        http: &HttpClient,
        code: &str,
        verifier: &str,
    ) -> Result<TokenSet, ConnectorError> {
        http.policy().check_url(&self.token_url)?;
        let response = self
            .client()
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(http)
            .await
            .map_err(token_error)?;
        Ok(token_set(&response))
    }

    /// Uses a refresh token for a new access token.
    pub async fn refresh(
        &self,
        http: &HttpClient,
        refresh_token: &str,
    ) -> Result<TokenSet, ConnectorError> {
        http.policy().check_url(&self.token_url)?;
        let response = self
            .client()
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(http)
            .await
            .map_err(token_error)?;
        Ok(token_set(&response))
    }
}

fn token_set(r: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: Secret::from(r.access_token().secret().as_str()),
        refresh_token: r.refresh_token().map(|t| Secret::from(t.secret().as_str())),
        expires_in: r.expires_in(),
    }
}

/// What a failed token request becomes. The provider's
/// `error_description` is prose that may quote anything back; only its
/// `error` code is kept.
fn token_error(
    e: RequestTokenError<ConnectorError, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> ConnectorError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = crate::connector::error_category(&serde_json::json!({
                "error": r.error().to_string(),
            }));
            match r.error() {
                BasicErrorResponseType::InvalidGrant => ConnectorError::Unauthorized(code),
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => ConnectorError::Unauthorized(
                    format!("the app's client credentials were refused: {code}"),
                ),
                _ => ConnectorError::Rejected {
                    status: 400,
                    message: code,
                },
            }
        }
        RequestTokenError::Request(inner) => inner,
        RequestTokenError::Parse(_, body) => ConnectorError::Remote {
            status: 502,
            message: format!(
                "the token endpoint answered something that is not a token ({} bytes)",
                body.len()
            ),
        },
        // The oauth2 crate's own words (an empty answer, a wrong content type).
        RequestTokenError::Other(m) => ConnectorError::Network(ConnectorError::short(&m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkPolicy;
    use crate::test_server::{Answer, http, json};

    async fn app(answer: Answer) -> (OAuthApp, HttpClient) {
        let addr = http(answer).await;
        let base = format!("http://{addr}");
        let app = OAuthApp {
            client_id: "client".into(),
            client_secret: "secret".into(),
            authorize_url: Url::parse(&format!("{base}/authorize")).unwrap(),
            token_url: Url::parse(&format!("{base}/token")).unwrap(),
            redirect_url: Url::parse("http://127.0.0.1:1/callback").unwrap(),
        };
        let client = HttpClient::new(
            NetworkPolicy {
                allow_private: true,
                ..NetworkPolicy::default()
            },
            Duration::from_secs(10),
        )
        .unwrap()
        .with_body_limit(4096);
        (app, client)
    }

    #[tokio::test]
    async fn token_answers_are_read_within_the_limit() {
        let (a, client) = app(json(
            200,
            r#"{"access_token":"at","token_type":"bearer","expires_in":1800,"refresh_token":"rt2"}"#,
        ))
        .await;
        let tokens = a.refresh(&client, "rt").await.unwrap();
        assert_eq!(tokens.access_token.expose(), "at");
        assert_eq!(
            tokens.refresh_token.as_ref().map(Secret::expose),
            Some("rt2")
        );

        let (a, client) = app(Answer::EndlessChunked).await;
        assert_eq!(
            a.refresh(&client, "rt").await,
            Err(ConnectorError::TooLarge { limit_bytes: 4096 })
        );
        assert_eq!(
            a.exchange(&client, "code", "verifier").await,
            Err(ConnectorError::TooLarge { limit_bytes: 4096 })
        );
    }

    #[tokio::test]
    async fn token_errors_keep_the_code_not_the_description() {
        let (a, client) = app(json(
            400,
            r#"{"error":"invalid_grant","error_description":"The refresh token of ada@example.com (Ada Lovelace) was revoked"}"#,
        ))
        .await;
        let err = a.refresh(&client, "rt").await.unwrap_err();
        assert_eq!(err, ConnectorError::Unauthorized("invalid_grant".into()));
        let (a, client) = app(json(
            400,
            r#"{"error":"invalid_request","error_description":"ada@example.com"}"#,
        ))
        .await;
        let err = a.exchange(&client, "code", "verifier").await.unwrap_err();
        assert!(!err.to_string().contains("ada@"), "{err}");
        assert!(err.to_string().contains("invalid_request"), "{err}");
    }

    #[tokio::test]
    async fn token_urls_are_guarded() {
        let (a, _) = app(json(200, "{}")).await;
        let guarded = HttpClient::new(NetworkPolicy::default(), Duration::from_secs(5)).unwrap();
        assert!(matches!(
            a.refresh(&guarded, "rt").await,
            Err(ConnectorError::Blocked(_))
        ));
    }
}
