//! Static assets, embedded in the binary and served under content-hashed
//! names with year-long cache headers: a changed file gets a new name.

use actix_web::{HttpResponse, http::header, web};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(RustEmbed)]
#[folder = "../../static/"]
struct Files;

struct Asset {
    original: String,
    mime: String,
}

struct Manifest {
    /// original name -> URL path
    urls: HashMap<String, String>,
    /// hashed file name -> asset
    by_hashed: HashMap<String, Asset>,
}

static MANIFEST: LazyLock<Manifest> = LazyLock::new(|| {
    let mut urls = HashMap::new();
    let mut by_hashed = HashMap::new();
    for name in Files::iter() {
        let Some(file) = Files::get(&name) else {
            continue;
        };
        let digest = hex::encode(Sha256::digest(&file.data));
        let short = digest.get(..12).unwrap_or(&digest);
        let hashed = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{short}.{ext}"),
            None => format!("{name}.{short}"),
        };
        urls.insert(name.to_string(), format!("/static/{hashed}"));
        by_hashed.insert(
            hashed,
            Asset {
                original: name.to_string(),
                mime: file.metadata.mimetype().to_owned(),
            },
        );
    }
    Manifest { urls, by_hashed }
});

/// The URL of an embedded file, e.g. `url("app.css")` -> `/static/app.3f2a….css`.
pub fn url(name: &str) -> &'static str {
    MANIFEST
        .urls
        .get(name)
        .map_or("/static/missing", String::as_str)
}

/// Serves a hashed asset.
pub async fn serve(path: web::Path<String>) -> HttpResponse {
    let Some(asset) = MANIFEST.by_hashed.get(path.as_str()) else {
        return HttpResponse::NotFound().finish();
    };
    let Some(file) = Files::get(&asset.original) else {
        return HttpResponse::NotFound().finish();
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.mime.clone()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(file.data.into_owned())
}
