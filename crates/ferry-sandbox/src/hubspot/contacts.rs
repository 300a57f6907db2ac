//! CRM v3 contacts: create, read, list, update, archive and search, with
//! HubSpot's record and error shapes.

use super::*;

/// Query parameters of a read. HubSpot's clients send `properties` either
/// comma-separated or repeated (`properties=a&properties=b`), so the query
/// string is read by hand rather than into a struct.
#[derive(Debug, Default)]
pub(super) struct ReadQuery {
    pub(super) properties: Vec<String>,
    pub(super) id_property: Option<String>,
    pub(super) limit: Option<usize>,
    pub(super) after: Option<String>,
}

impl ReadQuery {
    fn from(req: &HttpRequest) -> Self {
        let mut q = Self::default();
        for (k, v) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
            match k.as_ref() {
                "properties" => q.properties.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
                "idProperty" => q.id_property = Some(v.into_owned()),
                "limit" => q.limit = v.parse().ok(),
                "after" => q.after = Some(v.into_owned()),
                _ => {}
            }
        }
        q
    }

    fn wanted(&self) -> Option<Vec<String>> {
        (!self.properties.is_empty()).then(|| self.properties.clone())
    }
}

pub(super) fn known(p: &Portal, name: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&name) || p.custom_properties.contains(name)
}

pub(super) fn validate_properties(
    p: &Portal,
    props: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, HttpResponse> {
    let mut out = BTreeMap::new();
    for (k, v) in props {
        if !known(p, k) {
            return Err(hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!(
                    "Property values were not valid: [{{\"isValid\":false,\"message\":\"Property \\\"{k}\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"{k}\"}}]"
                ),
            ));
        }
        if matches!(
            k.as_str(),
            "hs_object_id" | "createdate" | "lastmodifieddate"
        ) {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if k == "email"
            && !text.is_empty()
            && !(text.contains('@') && text.rsplit('@').next().is_some_and(|d| d.contains('.')))
        {
            return Err(hubspot_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!(
                    "Property values were not valid: [{{\"isValid\":false,\"message\":\"Email address {text} is invalid\",\"error\":\"INVALID_EMAIL\",\"name\":\"email\"}}]"
                ),
            ));
        }
        out.insert(k.clone(), text);
    }
    Ok(out)
}

pub(super) fn find_contact<'a>(
    p: &'a mut Portal,
    id: &str,
    id_property: Option<&str>,
) -> Option<&'a mut Contact> {
    match id_property {
        Some("email") => {
            let wanted = id.to_lowercase();
            p.contacts.values_mut().find(|c| {
                c.properties
                    .get("email")
                    .is_some_and(|e| e.to_lowercase() == wanted)
            })
        }
        _ => id.parse::<u64>().ok().and_then(|n| p.contacts.get_mut(&n)),
    }
}

pub(super) fn email_taken(p: &Portal, email: &str, except: Option<u64>) -> Option<u64> {
    let wanted = email.to_lowercase();
    p.contacts
        .values()
        .find(|c| {
            Some(c.id) != except
                && c.properties
                    .get("email")
                    .is_some_and(|e| !e.is_empty() && e.to_lowercase() == wanted)
        })
        .map(|c| c.id)
}

pub(super) fn properties_of(body: &Value) -> Map<String, Value> {
    body.get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub(super) fn not_found(id: &str) -> HttpResponse {
    hubspot_error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("resource not found: Object not found.  objectId are usually numeric. id {id}"),
    )
}

pub(super) async fn create_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return Ok(not_found("portal"));
        };
        match create_one(p, &properties_of(&body)) {
            Ok(c) => (
                HttpResponse::Created().json(contact_json(&c, None)),
                vec![source_event(
                    event(
                        g.portal,
                        "contact.creation",
                        c.id,
                        "INTEGRATION",
                        None,
                        None,
                    ),
                    g.source_app,
                )],
            ),
            Err(r) => (r, vec![]),
        }
    };
    sim.dispatch(events);
    Ok(with_headers(res, &g.headers))
}

pub(super) fn source_event(mut e: Value, app: u64) -> Value {
    e["sourceId"] = json!(app.to_string());
    e
}

pub(super) fn create_one(
    p: &mut Portal,
    props: &Map<String, Value>,
) -> Result<Contact, HttpResponse> {
    if p.contacts.len() >= MAX_CONTACTS_PER_PORTAL {
        return Err(hubspot_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LIMIT_REACHED",
            &format!("A sandbox portal holds at most {MAX_CONTACTS_PER_PORTAL} contacts."),
        ));
    }
    let props = validate_properties(p, props)?;
    if !["email", "firstname", "lastname"]
        .iter()
        .any(|k| props.get(*k).is_some_and(|v| !v.is_empty()))
    {
        return Err(hubspot_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "A contact needs at least one of email, firstname or lastname.",
        ));
    }
    if let Some(existing) = props.get("email").and_then(|e| email_taken(p, e, None)) {
        return Err(hubspot_error(
            StatusCode::CONFLICT,
            "CONFLICT",
            &format!("Contact already exists. Existing ID: {existing}"),
        ));
    }
    Ok(insert_contact(p, props))
}

pub(super) async fn get_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Answer {
    let q = ReadQuery::from(&req);
    let g = guard(&sim, &req, READ_SCOPE, false).await?;
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let res = match find_contact(p, &id, q.id_property.as_deref()) {
        Some(c) => HttpResponse::Ok().json(contact_json(c, q.wanted().as_deref())),
        None => not_found(&id),
    };
    Ok(with_headers(res, &g.headers))
}

pub(super) async fn list_contacts(sim: web::Data<HubSpotSim>, req: HttpRequest) -> Answer {
    let q = ReadQuery::from(&req);
    let g = guard(&sim, &req, READ_SCOPE, false).await?;
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let all: Vec<&Contact> = p.contacts.values().collect();
    let res = HttpResponse::Ok().json(page(
        &all,
        q.limit.unwrap_or(10),
        q.after.as_deref(),
        q.wanted().as_deref(),
        false,
    ));
    Ok(with_headers(res, &g.headers))
}

pub(super) fn page(
    all: &[&Contact],
    limit: usize,
    after: Option<&str>,
    wanted: Option<&[String]>,
    with_total: bool,
) -> Value {
    let limit = limit.clamp(1, 200);
    let start = after.and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
    let results: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| contact_json(c, wanted))
        .collect();
    let mut out = json!({ "results": results });
    if with_total {
        out["total"] = json!(all.len());
    }
    if start + limit < all.len() {
        out["paging"] = json!({ "next": { "after": (start + limit).to_string(), "link": "" } });
    }
    out
}

pub(super) async fn update_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> Answer {
    let q = ReadQuery::from(&req);
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let (res, events) = {
        let mut state = sim.lock();
        let Some(p) = state.portals.get_mut(&g.portal) else {
            return Ok(not_found("portal"));
        };
        match update_one(
            p,
            &id,
            q.id_property.as_deref(),
            &properties_of(&body),
            g.portal,
            g.source_app,
        ) {
            Ok((c, events)) => {
                // As HubSpot answers a PATCH: the default properties and
                // the ones written.
                let written = written_names(&body);
                (
                    HttpResponse::Ok().json(contact_json(&c, Some(&written))),
                    events,
                )
            }
            Err(r) => (r, vec![]),
        }
    };
    sim.dispatch(events);
    Ok(with_headers(res, &g.headers))
}

/// The default properties and those a write names.
pub(super) fn written_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = super::RETURNED_BY_DEFAULT
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    for k in properties_of(body).keys() {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names
}

pub(super) fn update_one(
    p: &mut Portal,
    id: &str,
    id_property: Option<&str>,
    props: &Map<String, Value>,
    portal: u64,
    app: u64,
) -> Result<(Contact, Vec<Value>), HttpResponse> {
    let props = validate_properties(p, props)?;
    let target = find_contact(p, id, id_property)
        .map(|c| c.id)
        .ok_or_else(|| not_found(id))?;
    if let Some(existing) = props
        .get("email")
        .and_then(|e| email_taken(p, e, Some(target)))
    {
        return Err(hubspot_error(
            StatusCode::CONFLICT,
            "CONFLICT",
            &format!("Contact already exists. Existing ID: {existing}"),
        ));
    }
    let c = p.contacts.get_mut(&target).ok_or_else(|| not_found(id))?;
    let mut events = Vec::new();
    for (k, v) in props {
        if c.properties.get(&k) != Some(&v) {
            events.push(source_event(
                event(
                    portal,
                    "contact.propertyChange",
                    c.id,
                    "INTEGRATION",
                    Some(&k),
                    Some(&v),
                ),
                app,
            ));
        }
        if v.is_empty() {
            c.properties.remove(&k);
        } else {
            c.properties.insert(k, v);
        }
    }
    c.updated_at = Utc::now();
    c.properties
        .insert("lastmodifieddate".into(), now_iso(c.updated_at));
    Ok((c.clone(), events))
}

pub(super) async fn archive_contact(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Answer {
    let g = guard(&sim, &req, WRITE_SCOPE, false).await?;
    let mut state = sim.lock();
    let Some(p) = state.portals.get_mut(&g.portal) else {
        return Ok(not_found("portal"));
    };
    Ok({
        // HubSpot answers 204 even for an id that does not exist.
        if let Ok(n) = id.parse::<u64>() {
            p.contacts.remove(&n);
        }
        with_headers(HttpResponse::NoContent().finish(), &g.headers)
    })
}

pub(super) fn filter_matches(c: &Contact, f: &Value) -> bool {
    let name = f["propertyName"].as_str().unwrap_or_default();
    let op = f["operator"].as_str().unwrap_or("EQ");
    let actual = if name == "hs_object_id" {
        Some(c.id.to_string())
    } else {
        c.properties.get(name).cloned()
    };
    let value = f["value"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| (!f["value"].is_null()).then(|| f["value"].to_string()));
    let values: Vec<String> = f["values"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let cmp = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(b)),
    };
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match (op, actual.as_deref(), value.as_deref()) {
        ("HAS_PROPERTY", a, _) => a.is_some_and(|s| !s.is_empty()),
        ("NOT_HAS_PROPERTY", a, _) => a.is_none_or(str::is_empty),
        ("EQ", Some(a), Some(v)) => eq(a, v),
        ("NEQ", a, Some(v)) => a.is_none_or(|a| !eq(a, v)),
        ("LT", Some(a), Some(v)) => cmp(a, v) == Some(std::cmp::Ordering::Less),
        ("LTE", Some(a), Some(v)) => cmp(a, v) != Some(std::cmp::Ordering::Greater),
        ("GT", Some(a), Some(v)) => cmp(a, v) == Some(std::cmp::Ordering::Greater),
        ("GTE", Some(a), Some(v)) => cmp(a, v) != Some(std::cmp::Ordering::Less),
        ("BETWEEN", Some(a), Some(v)) => {
            let high = f["highValue"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| f["highValue"].to_string());
            cmp(a, v) != Some(std::cmp::Ordering::Less)
                && cmp(a, &high) != Some(std::cmp::Ordering::Greater)
        }
        ("IN", Some(a), _) => values.iter().any(|v| eq(a, v)),
        ("NOT_IN", a, _) => a.is_none_or(|a| !values.iter().any(|v| eq(a, v))),
        ("CONTAINS_TOKEN", Some(a), Some(v)) => {
            let needle = v.trim_matches('*').to_lowercase();
            a.to_lowercase()
                .split(|c: char| !c.is_alphanumeric() && c != '@' && c != '.')
                .any(|t| t.contains(&needle))
                || a.to_lowercase().contains(&needle)
        }
        ("NOT_CONTAINS_TOKEN", a, Some(v)) => a.is_none_or(|a| {
            !a.to_lowercase()
                .contains(&v.trim_matches('*').to_lowercase())
        }),
        _ => false,
    }
}

pub(super) async fn search_contacts(
    sim: web::Data<HubSpotSim>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Answer {
    let g = guard(&sim, &req, READ_SCOPE, true).await?;
    let state = sim.lock();
    let Some(p) = state.portals.get(&g.portal) else {
        return Ok(not_found("portal"));
    };
    let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
    let mut hits: Vec<&Contact> = p
        .contacts
        .values()
        .filter(|c| {
            groups.is_empty()
                || groups.iter().any(|g| {
                    g["filters"]
                        .as_array()
                        .is_none_or(|fs| fs.iter().all(|f| filter_matches(c, f)))
                })
        })
        .collect();
    if let Some(sort) = body["sorts"].as_array().and_then(|s| s.first()) {
        let (name, desc) = match sort {
            Value::String(s) => (s.trim_start_matches('-').to_owned(), s.starts_with('-')),
            other => (
                other["propertyName"]
                    .as_str()
                    .unwrap_or("hs_object_id")
                    .to_owned(),
                other["direction"].as_str() == Some("DESCENDING"),
            ),
        };
        hits.sort_by(|a, b| {
            let av = a.properties.get(&name).cloned().unwrap_or_default();
            let bv = b.properties.get(&name).cloned().unwrap_or_default();
            if desc { bv.cmp(&av) } else { av.cmp(&bv) }
        });
    }
    let wanted: Option<Vec<String>> = body["properties"].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let limit = body["limit"]
        .as_u64()
        .map_or(10, |l| usize::try_from(l).unwrap_or(10));
    let after = body["after"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| body["after"].as_u64().map(|n| n.to_string()));
    let res = HttpResponse::Ok().json(page(
        &hits,
        limit,
        after.as_deref(),
        wanted.as_deref(),
        true,
    ));
    Ok(with_headers(res, &g.headers))
}
