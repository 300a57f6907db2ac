//! The sandbox's sample contacts.

use super::*;

/// POST /sandbox-samples (admin): creates sample contacts in the tenant's
/// sandbox HubSpot portal, as a CRM user would; the portal's webhooks then
/// start the published workflows.
pub async fn sample_contacts(
    state: web::Data<AppState>,
    Admin(admin): Admin,
) -> Result<HttpResponse, AppError> {
    match state
        .services
        .connections
        .create_samples(&admin.actor)
        .await
    {
        Ok(created) => Ok(redirect_with_flash(
            "/runs",
            FlashKind::Success,
            &format!(
                "{created} sample contacts created in the sandbox HubSpot portal; their runs appear here within seconds."
            ),
        )),
        Err(ferry_app::Error::Unavailable(message)) => {
            Ok(redirect_with_flash("/home", FlashKind::Error, &message))
        }
        Err(e) => Err(e.into()),
    }
}
