//! A browser-like HTTP client with its own cookie jar, and what it reads.

use std::sync::Arc;

/// A response, read.
#[derive(Debug, Clone)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// Every `Set-Cookie` header.
    pub set_cookies: Vec<String>,
    /// Every header, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Page {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first `csrf_token` hidden input.
    pub fn csrf(&self) -> Option<String> {
        extract_attr_after(&self.body, "name=\"csrf_token\" value=\"")
    }
}

fn extract_attr_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let end = body.get(start..)?.find('"')? + start;
    body.get(start..end).map(str::to_owned)
}

/// An HTTP client with its own cookie jar.
pub struct TestClient {
    base: String,
    /// The underlying client.
    pub http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl TestClient {
    pub(crate) fn new(base: &str, headers: &[(&'static str, &str)]) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            default_headers.append(*name, value.parse().expect("header value"));
        }
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .default_headers(default_headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            base: base.to_owned(),
            http,
            jar,
        }
    }

    /// Sets a cookie by hand (forged-cookie tests).
    pub fn set_cookie(&self, cookie: &str) {
        let url: url::Url = self.base.parse().expect("base url");
        self.jar.add_cookie_str(cookie, &url);
    }

    /// The cookie header this client would send.
    pub fn cookies(&self) -> String {
        use reqwest::cookie::CookieStore;
        let url: url::Url = self.base.parse().expect("base url");
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    async fn read(res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let location = headers
            .iter()
            .find(|(k, _)| k == "location")
            .map(|(_, v)| v.clone());
        let set_cookies = headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.clone())
            .collect();
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            body,
            location,
            set_cookies,
            headers,
        }
    }

    /// Follows a redirect to `url` on this app (its path and query).
    pub async fn follow(&self, url: &url::Url) -> Page {
        self.get(&format!("{}?{}", url.path(), url.query().unwrap_or("")))
            .await
    }

    /// GETs `path` on the app.
    pub async fn get(&self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        Self::read(res).await
    }

    /// GETs `path` and returns its status and raw body (downloads).
    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = res.status().as_u16();
        (status, res.bytes().await.expect("body").to_vec())
    }

    /// POST a form to `path` exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .expect("POST");
        Self::read(res).await
    }

    /// GET `page` for its anti-forgery token, then POST `fields` plus the
    /// token to `action`, as a browser submitting the page's form would.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let form_page = self.get(page).await;
        let token = form_page.csrf().unwrap_or_else(|| {
            panic!(
                "no csrf token on {page} ({}): {}",
                form_page.status, form_page.body
            )
        });
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(action, &all).await
    }

    /// Logs in through the login form.
    pub async fn login(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// How askama escapes `raw` in HTML.
pub fn escaped(raw: &str) -> String {
    raw.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Asserts `raw` appears on the page only escaped.
pub fn assert_escaped(page: &Page, raw: &str) {
    assert!(
        page.body.contains(&escaped(raw)),
        "escaped {raw:?} not on the page: {}",
        page.body
    );
    if raw.contains(['<', '>', '"', '\'']) {
        assert!(!page.body.contains(raw), "unescaped {raw:?} on the page");
    }
}
