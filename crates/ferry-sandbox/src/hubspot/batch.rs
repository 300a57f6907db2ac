//! CRM v3 contacts in batches: read, create, update and archive.

use super::*;

pub(super) fn batch_result(
    results: Vec<Value>,
    errors: Vec<Value>,
    started: DateTime<Utc>,
) -> HttpResponse {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": now_iso(started),
        "completedAt": now_iso(Utc::now()),
    });
    if errors.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = json!(errors);
        HttpResponse::MultiStatus().json(body)
    }
}

pub(super) fn inputs(body: &Value) -> Result<Vec<Value>, HttpResponse> {
    let list = body["inputs"].as_array().cloned().unwrap_or_default();
    if list.len() > 100 {
        return Err(hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Batch size must be at most 100.",
        ));
    }
    Ok(list)
}

pub(super) async fn batch_read(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, READ_SCOPE, false).await?;
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return Ok(with_headers(r, &g.headers)),
    };
    let wanted: Option<Vec<String>> = body["properties"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let id_property = body["idProperty"].as_str().map(str::to_owned);
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    Ok({
        for input in list {
            let id = input["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| input["id"].to_string());
            match find_contact(p, &id, id_property.as_deref()) {
            Some(c) => results.push(contact_json(c, wanted.as_deref())),
            None => errors.push(json!({ "status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid. ({id})"), "context": { "ids": [id] } })),
        }
        }
        with_headers(batch_result(results, errors, started), &g.headers)
    })
}

pub(super) async fn batch_update(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return Ok(with_headers(r, &g.headers)),
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return Ok(not_found("portal"));
        };
        let (mut results, mut errors, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for input in list {
            let id = input["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| input["id"].to_string());
            match update_one(p, &id, input["idProperty"].as_str(), &properties_of(&input), g.portal, g.source_app) {
                Ok((c, mut e)) => {
                    results.push(contact_json(&c, None));
                    events.append(&mut e);
                }
                Err(_) => errors.push(json!({ "status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("Could not update contact {id}"), "context": { "ids": [id] } })),
            }
        }
        (batch_result(results, errors, started), events)
    };
    sim.dispatch(events);
    Ok(with_headers(res, &g.headers))
}

pub(super) async fn batch_create(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let started = Utc::now();
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return Ok(with_headers(r, &g.headers)),
    };
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return Ok(not_found("portal"));
        };
        let (mut results, mut events) = (Vec::new(), Vec::new());
        for input in list {
            match create_one(p, &properties_of(&input)) {
                Ok(c) => {
                    events.push(source_event(
                        event(
                            g.portal,
                            "contact.creation",
                            c.id,
                            "INTEGRATION",
                            None,
                            None,
                        ),
                        g.source_app,
                    ));
                    results.push(contact_json(&c, None));
                }
                Err(r) => return Ok(with_headers(r, &g.headers)),
            }
        }
        let mut res = batch_result(results, vec![], started);
        *res.status_mut() = StatusCode::CREATED;
        (res, events)
    };
    sim.dispatch(events);
    Ok(with_headers(res, &g.headers))
}

pub(super) async fn batch_archive(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let list = match inputs(&body) {
        Ok(l) => l,
        Err(r) => return Ok(with_headers(r, &g.headers)),
    };
    let mut state = sim.lock();
    Ok({
        if let Some(p) = state.portals.get_mut(&g.portal) {
            for input in list {
                if let Some(n) = input["id"].as_str().and_then(|s| s.parse::<u64>().ok()) {
                    p.contacts.remove(&n);
                }
            }
        }
        with_headers(HttpResponse::NoContent().finish(), &g.headers)
    })
}
