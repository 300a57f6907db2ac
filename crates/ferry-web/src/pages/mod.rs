//! Routes, one file per area.

pub(crate) mod alerts;
mod audit;
mod auth;
mod compliance;
mod connections;
mod health;
pub(crate) mod home;
mod hooks;
pub(crate) mod metrics;
mod operator;
mod outbox;
mod runs;
mod users;
mod workflows;

use crate::error::AppError;
use crate::session::CurrentUser;
use actix_web::{HttpResponse, web};

pub(crate) use crate::redirect::safe_next;

/// Records every route as it is mounted, so the access-control test can
/// enumerate the router itself (a route added without a decision there
/// fails the suite).
struct Router<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    seen: Vec<(&'static str, &'static str)>,
}

impl Router<'_> {
    fn add<F, Args>(
        &mut self,
        method: &'static str,
        path: &'static str,
        route: actix_web::Route,
        handler: F,
    ) where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.seen.push((method, path));
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.route(path, route.to(handler));
        }
    }

    fn get<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.add("GET", path, web::get(), handler);
    }

    fn post<F, Args>(&mut self, path: &'static str, handler: F)
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        self.add("POST", path, web::post(), handler);
    }
}

/// Every route of the web UI.
pub fn routes(cfg: &mut web::ServiceConfig) {
    register(&mut Router {
        cfg: Some(cfg),
        seen: Vec::new(),
    });
}

/// Every (method, path pattern) the web UI serves, in mounting order.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    let mut r = Router {
        cfg: None,
        seen: Vec::new(),
    };
    register(&mut r);
    r.seen
}

fn register(r: &mut Router<'_>) {
    r.get("/healthz", health::healthz);
    r.get("/readyz", health::readyz);
    r.get("/metrics", metrics::scrape);
    r.get("/static/{file}", crate::assets::serve);
    r.get("/", home::root);
    r.get("/home", home::overview);
    r.get("/account", home::account);
    r.get("/login", auth::login_page);
    r.post("/login", auth::login);
    r.post("/logout", auth::logout);
    r.get("/password/forgot", auth::forgot_page);
    r.post("/password/forgot", auth::forgot);
    r.get("/invite/{token}", auth::link_page);
    r.post("/invite/{token}", auth::redeem_link);
    r.get("/password/reset/{token}", auth::link_page);
    r.post("/password/reset/{token}", auth::redeem_link);
    r.get("/operator/tenants", operator::list);
    r.post("/operator/tenants", operator::create);
    r.get("/operator/tenants/new", operator::new_page);
    r.get("/operator/tenants/{id}", operator::detail);
    r.post("/operator/tenants/{id}/suspend", operator::suspend);
    r.post("/operator/tenants/{id}/reactivate", operator::reactivate);
    r.post("/operator/tenants/{id}/delete", operator::delete);
    r.get("/operator/audit", compliance::platform);
    r.get("/users", users::list);
    r.post("/users/invite", users::invite);
    r.get("/users/{id}", users::detail);
    r.post("/users/{id}/role", users::change_role);
    r.post("/users/{id}/deactivate", users::deactivate);
    r.post("/users/{id}/reactivate", users::reactivate);
    r.get("/connections", connections::list);
    r.get("/connections/oauth/callback", connections::oauth_callback);
    r.get("/connections/new/{connector}", connections::new_form);
    r.post("/connections/new/{connector}", connections::create);
    r.get("/connections/{id}", connections::detail);
    r.post("/connections/{id}/test", connections::test);
    r.post("/connections/{id}/revoke", connections::revoke);
    r.post("/connections/{id}/reconnect", connections::reconnect);
    r.post("/hooks/hubspot", hooks::hubspot);
    r.post("/hooks/hubspot/sandbox", hooks::hubspot_sandbox);
    r.post("/hooks/webhook/{id}", hooks::generic);
    r.post("/hooks/verification/{id}", hooks::verification);
    r.get("/workflows", workflows::list);
    r.post("/workflows", workflows::create);
    r.get("/workflows/new", workflows::new_form);
    r.get("/workflows/{id}", workflows::detail);
    r.post("/workflows/{id}/definition", workflows::save_definition);
    r.post("/workflows/{id}/bindings", workflows::save_bindings);
    r.get("/workflows/{id}/publish", workflows::publish_form);
    r.post("/workflows/{id}/publish", workflows::publish);
    r.post("/workflows/{id}/rollback", workflows::roll_back);
    r.get("/workflows/{id}/build", workflows::build);
    r.post("/workflows/{id}/build/insert", workflows::insert_step);
    r.post("/workflows/{id}/build/trigger", workflows::set_trigger);
    r.post("/workflows/{id}/build/step/{key}", workflows::step_card);
    r.post("/workflows/{id}/build/test", workflows::test_draft);
    r.post("/workflows/{id}/pause", workflows::pause);
    r.post("/workflows/{id}/resume", workflows::resume);
    r.post("/workflows/{id}/unpublish", workflows::unpublish);
    r.post("/workflows/{id}/rename", workflows::rename);
    r.post("/workflows/{id}/duplicate", workflows::duplicate);
    r.post("/workflows/{id}/delete", workflows::delete);
    r.post("/sandbox-samples", connections::sample_contacts);
    r.post("/workflows/{id}/dry-run", workflows::dry_run);
    r.get("/runs", runs::list);
    r.post("/runs/replay", runs::bulk_replay);
    r.get("/runs/{id}", runs::detail);
    r.post("/runs/{id}/replay", runs::replay);
    r.get("/runs/{id}/log.json", runs::export_json);
    r.get("/runs/{id}/log.csv", runs::export_csv);
    r.get("/api/runs", runs::api_list);
    r.get("/verifications", runs::verifications);
    r.get("/verifications.csv", runs::verifications_csv);
    r.get("/alerts", alerts::history);
    r.get("/alerts/rules", alerts::rules);
    r.get("/alerts/rules/{id}", alerts::rule);
    r.post("/alerts/rules/{id}", alerts::save_rule);
    r.post("/alerts/rules/{id}/test", alerts::test_rule);
    r.get("/alerts/{id}", alerts::incident);
    r.post("/alerts/{id}/acknowledge", alerts::acknowledge);
    r.get("/compliance", compliance::hub);
    r.post("/compliance/retention", compliance::save_retention);
    r.get("/compliance/fields", compliance::fields);
    r.post("/compliance/fields", compliance::save_fields);
    r.get("/inventory.csv", compliance::inventory_csv);
    r.get("/evidence.zip", compliance::tenant_pack);
    r.get("/audit", compliance::audit_log);
    r.get("/audit/verify", compliance::audit_verify);
    r.get("/audit.csv", compliance::audit_csv);
    r.get("/records", compliance::find_record);
    r.get("/records/{record}", compliance::record_trail);
    r.get("/workflows/{id}/docs", compliance::docs);
    r.get("/workflows/{id}/docs.md", compliance::docs_markdown);
    r.post("/workflows/{id}/profile", compliance::save_profile);
    r.get("/workflows/{id}/review", compliance::review);
    r.post("/workflows/{id}/review", compliance::submit_review);
    r.get("/workflows/{id}/versions", compliance::versions);
    r.get("/workflows/{id}/evidence.zip", compliance::workflow_pack);
    r.get("/outbox", outbox::list);
    r.get("/outbox/{id}", outbox::detail);
}

/// The 404 page for any unknown path.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// A name a person gave something (a connection, a workflow): the message
/// names what it is for.
pub(crate) fn parse_name(
    raw: &str,
    what: &str,
) -> Result<ferry_core::PersonName, ferry_core::FieldError> {
    ferry_core::PersonName::parse("name", raw).map_err(|e| {
        ferry_core::FieldError::new(
            "name",
            e.message
                .replace("a name", &format!("a name for the {what}")),
        )
    })
}

/// Sandbox or production, as chosen in a form.
pub(crate) fn parse_environment(
    raw: &str,
) -> Result<ferry_core::Environment, ferry_core::FieldError> {
    ferry_core::Environment::parse(raw)
        .ok_or_else(|| ferry_core::FieldError::new("environment", "Choose sandbox or production."))
}

/// Redirect target after login, for each kind of user.
fn home_for(user: &CurrentUser) -> &'static str {
    match user.principal {
        crate::principal::Principal::Operator => "/operator/tenants",
        crate::principal::Principal::Member { .. } => "/home",
    }
}
