//! OAuth 2.0 authorization code with PKCE and `state`, and the refresh
//! grant, through the `oauth2` crate. Client credentials go in the request
//! body, as HubSpot expects.

use crate::{ConnectorError, HttpClient};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use std::time::Duration;
use url::Url;

/// An OAuth application registered with a provider.
#[derive(Clone)]
pub struct OAuthApp {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// Where users consent.
    pub authorize_url: Url,
    /// Where codes and refresh tokens become access tokens.
    pub token_url: Url,
    /// Ferry's callback.
    pub redirect_url: Url,
}

impl std::fmt::Debug for OAuthApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .finish()
    }
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
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token.
    pub access_token: String,
    /// The refresh token, when one was (re)issued.
    pub refresh_token: Option<String>,
    /// The access token's lifetime.
    pub expires_in: Option<Duration>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet([redacted], expires_in: {:?})", self.expires_in)
    }
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
            .set_client_secret(ClientSecret::new(self.client_secret.clone()))
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
            .request_async(http.raw())
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
            .request_async(http.raw())
            .await
            .map_err(token_error)?;
        Ok(token_set(&response))
    }
}

fn token_set(r: &oauth2::basic::BasicTokenResponse) -> TokenSet {
    TokenSet {
        access_token: r.access_token().secret().clone(),
        refresh_token: r.refresh_token().map(|t| t.secret().clone()),
        expires_in: r.expires_in(),
    }
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> ConnectorError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r
                .error_description()
                .cloned()
                .unwrap_or_else(|| r.error().to_string());
            match r.error() {
                BasicErrorResponseType::InvalidGrant => {
                    ConnectorError::Unauthorized(ConnectorError::short(&description))
                }
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    ConnectorError::Unauthorized(format!(
                        "the app's client credentials were refused: {}",
                        ConnectorError::short(&description)
                    ))
                }
                _ => ConnectorError::Rejected {
                    status: 400,
                    message: ConnectorError::short(&description),
                },
            }
        }
        RequestTokenError::Request(inner) => {
            let text = inner.to_string();
            if text.contains("timed out") || text.contains("timeout") {
                ConnectorError::Timeout
            } else {
                ConnectorError::Network(ConnectorError::short(&text))
            }
        }
        RequestTokenError::Parse(_, body) => ConnectorError::Remote {
            status: 502,
            message: format!(
                "the token endpoint answered something that is not a token ({} bytes)",
                body.len()
            ),
        },
        RequestTokenError::Other(m) => ConnectorError::Network(ConnectorError::short(&m)),
    }
}
