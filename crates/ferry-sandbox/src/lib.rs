//! Simulators of the systems Ferry talks to, served by actix under
//! `/sandbox/hubspot` and `/sandbox/verify`. They speak the real wire
//! formats (see REFERENCE.md), so Ferry's production connector code — and
//! the official HubSpot client libraries — run against them over real HTTP.
//! State is kept in memory, per sandbox portal or account.

// Handlers build their error answers early and return them whole; the
// responses are large, but this is a test double, not a hot path.
#![allow(clippy::result_large_err)]

pub mod hubspot;
pub mod verify;

mod util;

use actix_web::web;

pub use hubspot::{HubSpotSim, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_v3};
pub use verify::{VerifySim, sign_result};

/// Both simulators.
#[derive(Clone)]
pub struct Sandbox {
    /// The HubSpot simulator.
    pub hubspot: HubSpotSim,
    /// The verification-provider simulator.
    pub verify: VerifySim,
}

impl Sandbox {
    /// Simulators with the sandbox HubSpot app registered.
    pub fn new(hubspot_client_id: &str, hubspot_client_secret: &str) -> Self {
        Self {
            hubspot: HubSpotSim::new(hubspot_client_id, hubspot_client_secret),
            verify: VerifySim::new(),
        }
    }

    /// Mounts both under `/sandbox`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope("/sandbox/hubspot").configure(|c| hubspot::routes(c, self.hubspot.clone())),
        )
        .service(
            web::scope("/sandbox/verify").configure(|c| verify::routes(c, self.verify.clone())),
        );
    }
}
