//! Simulators of the systems Ferry talks to, served by actix under
//! `/sandbox/hubspot` and `/sandbox/verify`. They speak the real wire
//! formats (see REFERENCE.md), so Ferry's production connector code — and
//! the official HubSpot client libraries — run against them over real HTTP.
//! State is kept in memory, per sandbox portal or account.

// Handlers build their error answers early and return them whole; the
// responses are large, but this is a test double, not a hot path.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod hubspot;
pub mod verify;

mod util;

use actix_web::web;
use ferry_connectors::HttpClient;

pub use access::{Access, Caller, Gate, Mode, Visitor};
pub use hubspot::{HubSpotSim, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_v3};
pub use verify::{VerifySim, sign_result};

/// Both simulators.
#[derive(Clone)]
pub struct Sandbox {
    /// The HubSpot simulator.
    pub hubspot: HubSpotSim,
    /// The verification-provider simulator.
    pub verify: VerifySim,
    access: Access,
}

impl Sandbox {
    /// Simulators with the sandbox HubSpot app registered; their outbound
    /// calls (webhooks) go through `http`, and `access` decides who uses
    /// their pages and admin API.
    pub fn new(
        hubspot_client_id: &str,
        hubspot_client_secret: &str,
        http: HttpClient,
        access: Access,
    ) -> Self {
        Self {
            hubspot: HubSpotSim::new(
                hubspot_client_id,
                hubspot_client_secret,
                http.clone(),
                access.clone(),
            ),
            verify: VerifySim::new(http),
            access,
        }
    }

    /// Every (method, full path) the simulators serve.
    pub fn route_table() -> Vec<(&'static str, String)> {
        let hubspot = hubspot::route_table()
            .into_iter()
            .map(|(m, p)| (m, format!("/sandbox/hubspot{p}")));
        let verify = verify::route_table()
            .into_iter()
            .map(|(m, p)| (m, format!("/sandbox/verify{p}")));
        hubspot.chain(verify).collect()
    }

    /// Mounts both under `/sandbox`, each behind the access layer that
    /// decides its admin API and pages.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let access = web::Data::new(self.access.clone());
        cfg.service(
            web::scope("/sandbox/hubspot")
                .app_data(access.clone())
                .wrap(actix_web::middleware::from_fn(access::admin_layer))
                .configure(|c| hubspot::routes(c, self.hubspot.clone())),
        )
        .service(
            web::scope("/sandbox/verify")
                .app_data(access)
                .wrap(actix_web::middleware::from_fn(access::admin_layer))
                .configure(|c| verify::routes(c, self.verify.clone())),
        );
    }
}
