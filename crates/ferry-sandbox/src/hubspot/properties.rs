//! CRM v3 contact properties: create and read custom properties.

use super::*;

pub(super) async fn create_property(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let Some(name) = body["name"].as_str().filter(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) else {
        return Ok(with_headers(
            hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "name is required: lower-case letters, digits and _",
            ),
            &g.headers,
        ));
    };
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let res = if known(p, name) {
        hubspot_error(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            &format!("A property named '{name}' already exists."),
        )
    } else {
        p.custom_properties.insert(name.to_owned());
        HttpResponse::Created().json(property_json(name, &body))
    };
    Ok(with_headers(res, &g.headers))
}

pub(super) fn property_json(name: &str, body: &Value) -> Value {
    json!({
        "name": name,
        "label": body["label"].as_str().unwrap_or(name),
        "type": body["type"].as_str().unwrap_or("string"),
        "fieldType": body["fieldType"].as_str().unwrap_or("text"),
        "groupName": body["groupName"].as_str().unwrap_or("contactinformation"),
        "hidden": false,
        "formField": false,
    })
}

pub(super) async fn get_property(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    name: web::Path<String>,
) -> Answer {
    let g = guard(&sim, &req, READ_SCOPE, false).await?;
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let res = if known(p, &name) {
        HttpResponse::Ok().json(property_json(&name, &Value::Null))
    } else {
        hubspot_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Unable to find property {name}"),
        )
    };
    Ok(with_headers(res, &g.headers))
}
