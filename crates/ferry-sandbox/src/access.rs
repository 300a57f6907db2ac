//! Who may use the simulators' admin API and browser pages.
//!
//! The simulators' machine APIs (OAuth token endpoint, CRM v3, the
//! provider's `/v1`) authenticate by the tokens and keys they issue, as the
//! real systems do. Everything else — the consent screen, the fault-knob
//! page and the raw admin API — is decided here, in one of two modes:
//!
//! - [`Mode::Local`] (`ferry demo`, `ferry sandbox`, the test suite): a local
//!   tool. Pages and the admin API answer clients on the loopback interface
//!   only, and never a request a browser marks as coming from another site.
//! - [`Mode::Shared`] (`ferry serve` with `FERRY_SANDBOX=true`): the
//!   simulators inside a multi-tenant Ferry. The host (Ferry) says who a
//!   request's session belongs to through a [`Gate`]: a tenant's admin sees
//!   and uses only the portals and accounts their tenant created; the raw
//!   admin API needs an operator session.
//!
//! In both modes the admin key (`Authorization: Bearer …`, derived from
//! Ferry's master key) opens the admin API: Ferry's own pages use it, with
//! `X-Sandbox-Owner` naming the tenant on whose behalf they create things.
//! State-changing forms carry an anti-forgery token (a double-submit
//! cookie), and creation is capped per owner.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Portals (HubSpot) or accounts (provider) one tenant may create.
pub const MAX_PER_OWNER: usize = 5;
/// Contacts one sandbox portal may hold.
pub const MAX_CONTACTS_PER_PORTAL: usize = 10_000;

/// Who the host says a request's session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visitor {
    /// A platform operator.
    Operator,
    /// A member of a tenant.
    Member {
        /// The tenant's id.
        tenant: String,
        /// Whether they are the tenant's admin (only admins connect apps).
        admin: bool,
    },
}

/// The host's session lookup: the visitor of a request, if signed in.
pub type Gate =
    Arc<dyn Fn(&HttpRequest) -> Pin<Box<dyn Future<Output = Option<Visitor>>>> + Send + Sync>;

/// How the simulators are exposed.
#[derive(Clone)]
pub enum Mode {
    /// A local tool: loopback clients only.
    Local,
    /// Inside a multi-tenant Ferry: sessions decide, through the gate.
    Shared(Gate),
}

/// The simulators' access policy. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    mode: Mode,
    admin_key: Arc<str>,
    secure_cookies: bool,
    login_path: Arc<str>,
}

/// What a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Every portal and account (an operator, the local user, or Ferry
    /// itself with the admin key).
    Everything,
    /// Only what this owner (a tenant id) created.
    Owner(String),
}

impl Caller {
    /// Whether the caller may see something created by `owner`.
    pub fn can_see(&self, owner: Option<&str>) -> bool {
        match self {
            Self::Everything => true,
            Self::Owner(me) => owner == Some(me.as_str()),
        }
    }

    /// The owner to record on what this caller creates.
    pub fn owner(&self) -> Option<String> {
        match self {
            Self::Everything => None,
            Self::Owner(me) => Some(me.clone()),
        }
    }
}

/// Handlers of the admin API and the fault-knob pages take the caller the
/// access layer admitted.
impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            actix_web::error::InternalError::from_response(
                "no caller",
                forbidden("The sandbox's access layer did not admit this request."),
            )
            .into()
        }))
    }
}

/// Decides every request under a simulator's `/admin` before any handler
/// reads its body: the fault-knob page and its forms (`/admin`,
/// `/admin/ui/…`) as browser pages, everything else as the raw admin API.
/// The admitted [`Caller`] goes into the request's extensions.
pub async fn admin_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The path as the router matches it (percent-decoded), so
    // `/sandbox/hubspot/%61dmin/…` is decided like `/admin/…`.
    let path = req.match_info().as_str().to_owned();
    let Some(rest) = path
        .strip_prefix("/sandbox/hubspot")
        .or_else(|| path.strip_prefix("/sandbox/verify"))
    else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let is_page = rest == "/admin" || rest.starts_with("/admin/ui/");
    if !(is_page || rest.starts_with("/admin/")) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let Some(access) = req.app_data::<web::Data<Access>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "sandbox access policy missing",
        ));
    };
    let decided = if is_page {
        access.page(req.request(), true).await
    } else {
        access.admin_api(req.request()).await
    };
    match decided {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(refusal) => Ok(req.into_response(refusal).map_into_right_body()),
    }
}

/// Name of the simulators' anti-forgery cookie.
const CSRF_COOKIE: &str = "ferry_sandbox_csrf";
const CSRF_COOKIE_SECURE: &str = "__Host-ferry_sandbox_csrf";

fn forbidden(message: &str) -> HttpResponse {
    HttpResponse::build(StatusCode::FORBIDDEN).json(json!({
        "status": "error",
        "category": "FORBIDDEN",
        "message": message,
    }))
}

/// A loopback client that also asked for a loopback name: a page on
/// another site whose name an attacker pointed at 127.0.0.1 (DNS
/// rebinding) sends its own name as `Host`, and is refused.
fn is_loopback(req: &HttpRequest) -> bool {
    // The Host header itself (not `Forwarded`/`X-Forwarded-Host`, which a
    // script on a rebound page may set).
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
        None => host
            .rsplit_once(':')
            .map_or(host.clone(), |(h, _)| h.to_owned()),
    };
    let loopback_name = name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback_name && req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

/// A browser marks requests another site started (`Sec-Fetch-Site`);
/// those never reach a local tool's admin API.
fn is_cross_site(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v, "same-origin" | "none"))
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Access {
    /// A policy. `admin_key` opens the admin API; `login_path` is where a
    /// shared sandbox sends a visitor without a session.
    pub fn new(mode: Mode, admin_key: &str, secure_cookies: bool, login_path: &str) -> Self {
        Self {
            mode,
            admin_key: admin_key.into(),
            secure_cookies,
            login_path: login_path.into(),
        }
    }

    /// A local tool's policy (loopback only).
    pub fn local(admin_key: &str) -> Self {
        Self::new(Mode::Local, admin_key, false, "/login")
    }

    /// Whether the simulators are shared by tenants.
    pub fn is_shared(&self) -> bool {
        matches!(self.mode, Mode::Shared(_))
    }

    fn key_matches(&self, req: &HttpRequest) -> bool {
        let Some(given) = header(req, "authorization").and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        !self.admin_key.is_empty() && bool::from(given.as_bytes().ct_eq(self.admin_key.as_bytes()))
    }

    async fn visitor(&self, req: &HttpRequest) -> Option<Visitor> {
        match &self.mode {
            Mode::Shared(gate) => gate(req).await,
            Mode::Local => None,
        }
    }

    /// Decides a call to the raw admin API: the admin key (with an
    /// optional `X-Sandbox-Owner`), an operator session (shared), or a
    /// loopback client that no other site sent (local).
    pub async fn admin_api(&self, req: &HttpRequest) -> Result<Caller, HttpResponse> {
        if self.key_matches(req) {
            // A local tool has one user: owners matter on a shared sandbox.
            return Ok(match header(req, "x-sandbox-owner") {
                Some(owner) if !owner.is_empty() && self.is_shared() => {
                    Caller::Owner(owner.to_owned())
                }
                _ => Caller::Everything,
            });
        }
        match &self.mode {
            Mode::Local if is_loopback(req) && !is_cross_site(req) => Ok(Caller::Everything),
            Mode::Local => Err(forbidden(
                "The sandbox's admin API answers only this machine.",
            )),
            // A session cookie alone does not prove the operator meant it:
            // a request another site (even a sibling subdomain) started is
            // refused.
            Mode::Shared(_) if is_cross_site(req) => Err(forbidden(
                "The sandbox's admin API refuses requests started by another site.",
            )),
            Mode::Shared(_) => match self.visitor(req).await {
                Some(Visitor::Operator) => Ok(Caller::Everything),
                _ => Err(forbidden(
                    "The sandbox's admin API needs an operator's session.",
                )),
            },
        }
    }

    /// Decides a browser page (consent screen, fault knobs): the local
    /// user, an operator, or a tenant's admin (their own things only). A
    /// visitor without a session is sent to sign in.
    pub async fn page(&self, req: &HttpRequest, operators: bool) -> Result<Caller, HttpResponse> {
        match &self.mode {
            Mode::Local if is_loopback(req) => Ok(Caller::Everything),
            Mode::Local => Err(forbidden("The sandbox answers only this machine.")),
            Mode::Shared(_) => match self.visitor(req).await {
                Some(Visitor::Operator) if operators => Ok(Caller::Everything),
                Some(Visitor::Member {
                    tenant,
                    admin: true,
                }) => Ok(Caller::Owner(tenant)),
                Some(_) => Err(forbidden(
                    "Only a tenant's admin can use the sandbox's pages.",
                )),
                None => {
                    let here = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    let target = if req.method() == actix_web::http::Method::GET {
                        format!(
                            "{}?next={}",
                            self.login_path,
                            url::form_urlencoded::byte_serialize(here.as_bytes())
                                .collect::<String>()
                        )
                    } else {
                        self.login_path.to_string()
                    };
                    Err(HttpResponse::SeeOther()
                        .insert_header(("Location", target))
                        .finish())
                }
            },
        }
    }

    fn csrf_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            CSRF_COOKIE_SECURE
        } else {
            CSRF_COOKIE
        }
    }

    /// The anti-forgery token for a form page: the browser's cookie if it
    /// has a well-formed one, else a new one (and the cookie to set).
    pub fn form_token(&self, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
        if let Some(c) = req.cookie(self.csrf_cookie_name())
            && c.value().len() == 64
            && c.value().bytes().all(|b| b.is_ascii_hexdigit())
        {
            return (c.value().to_owned(), None);
        }
        let token = crate::util::random_hex(64);
        let cookie = Cookie::build(self.csrf_cookie_name(), token.clone())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure_cookies)
            .finish();
        (token, Some(cookie))
    }

    /// Checks a submitted form's token against the browser's cookie.
    pub fn check_form(&self, req: &HttpRequest, submitted: &str) -> Result<(), HttpResponse> {
        let ok = req.cookie(self.csrf_cookie_name()).is_some_and(|c| {
            c.value().len() == 64 && bool::from(c.value().as_bytes().ct_eq(submitted.as_bytes()))
        });
        if ok {
            Ok(())
        } else {
            Err(forbidden(
                "The form's anti-forgery token is missing or does not match; reload the page and try again.",
            ))
        }
    }
}

/// Adds the anti-forgery cookie to a page's answer when a new one was minted.
pub fn with_cookie(mut res: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = res.add_cookie(&c);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn peer(ip: &str) -> std::net::SocketAddr {
        format!("{ip}:5000").parse().unwrap()
    }

    #[actix_web::test]
    async fn a_local_tool_answers_loopback_clients_no_other_site_sent() {
        let access = Access::local("k".repeat(64).as_str());
        let local = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .insert_header(("Host", "127.0.0.1:8080"))
            .to_http_request();
        assert_eq!(access.admin_api(&local).await.unwrap(), Caller::Everything);
        // A request without a Host (HTTP/1.0) is not taken for a local one.
        let hostless = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .to_http_request();
        assert!(access.admin_api(&hostless).await.is_err());
        let remote = TestRequest::default()
            .peer_addr(peer("10.1.2.3"))
            .to_http_request();
        assert!(access.admin_api(&remote).await.is_err());
        let cross = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .insert_header(("Host", "127.0.0.1:8080"))
            .insert_header(("Sec-Fetch-Site", "cross-site"))
            .to_http_request();
        assert!(access.admin_api(&cross).await.is_err());
        // DNS rebinding: another site's name pointed at 127.0.0.1.
        let rebound = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .insert_header(("Host", "evil.example:8080"))
            .to_http_request();
        assert!(access.admin_api(&rebound).await.is_err());
        let forwarded = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .insert_header(("Host", "evil.example"))
            .insert_header(("X-Forwarded-Host", "localhost"))
            .to_http_request();
        assert!(access.admin_api(&forwarded).await.is_err());
        for host in ["127.0.0.1:8080", "localhost", "[::1]:8080"] {
            let named = TestRequest::default()
                .peer_addr(peer("127.0.0.1"))
                .insert_header(("Host", host))
                .to_http_request();
            assert!(access.admin_api(&named).await.is_ok(), "{host}");
        }
        // The key opens it from anywhere, scoped to the owner it names.
        let keyed = TestRequest::default()
            .peer_addr(peer("10.1.2.3"))
            .insert_header(("Authorization", format!("Bearer {}", "k".repeat(64))))
            .insert_header(("X-Sandbox-Owner", "ten_a"))
            .to_http_request();
        // A local tool has one user: the owner header changes nothing.
        assert_eq!(access.admin_api(&keyed).await.unwrap(), Caller::Everything);
        let wrong = TestRequest::default()
            .peer_addr(peer("10.1.2.3"))
            .insert_header(("Authorization", "Bearer nope"))
            .to_http_request();
        assert!(access.admin_api(&wrong).await.is_err());
    }

    #[actix_web::test]
    async fn a_shared_sandbox_asks_the_gate() {
        let gate: Gate = Arc::new(|req: &HttpRequest| {
            let who = header(req, "x-test-who").map(str::to_owned);
            Box::pin(async move {
                match who.as_deref() {
                    Some("op") => Some(Visitor::Operator),
                    Some("admin") => Some(Visitor::Member {
                        tenant: "ten_a".into(),
                        admin: true,
                    }),
                    Some("staff") => Some(Visitor::Member {
                        tenant: "ten_a".into(),
                        admin: false,
                    }),
                    _ => None,
                }
            })
        });
        let access = Access::new(Mode::Shared(gate), "key", false, "/login");
        let req = |who: &str| {
            TestRequest::default()
                .peer_addr(peer("127.0.0.1"))
                .insert_header(("x-test-who", who))
                .to_http_request()
        };
        // Loopback alone opens nothing.
        assert!(access.admin_api(&req("nobody")).await.is_err());
        assert!(access.admin_api(&req("admin")).await.is_err());
        assert_eq!(
            access.admin_api(&req("op")).await.unwrap(),
            Caller::Everything
        );
        // Not when another site (even a sibling subdomain) started it.
        let forged = TestRequest::default()
            .peer_addr(peer("127.0.0.1"))
            .insert_header(("x-test-who", "op"))
            .insert_header(("Sec-Fetch-Site", "same-site"))
            .to_http_request();
        assert!(access.admin_api(&forged).await.is_err());
        // On a shared sandbox the key's owner header scopes the caller.
        let keyed = TestRequest::default()
            .insert_header(("Authorization", "Bearer key"))
            .insert_header(("X-Sandbox-Owner", "ten_b"))
            .to_http_request();
        assert_eq!(
            access.admin_api(&keyed).await.unwrap(),
            Caller::Owner("ten_b".into())
        );
        assert_eq!(
            access.page(&req("admin"), true).await.unwrap(),
            Caller::Owner("ten_a".into())
        );
        assert!(access.page(&req("staff"), true).await.is_err());
        assert!(access.page(&req("op"), false).await.is_err());
        let anonymous = access.page(&req("nobody"), true).await.unwrap_err();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    }

    #[test]
    fn owners_see_only_their_own() {
        let a = Caller::Owner("ten_a".into());
        assert!(a.can_see(Some("ten_a")));
        assert!(!a.can_see(Some("ten_b")));
        assert!(!a.can_see(None));
        assert!(Caller::Everything.can_see(None));
    }
}
