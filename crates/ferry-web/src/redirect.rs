//! Where Ferry may send a browser back to after login: only a path on Ferry
//! itself (no open redirect).
//!
//! A `next=` value reaches the `Location` header of the login answer, and a
//! browser resolves that header against the login page's URL with the WHATWG
//! URL parser. [`safe_next`] accepts a value only when that resolution cannot
//! leave Ferry's origin, whatever tricks the value plays.

use url::Url;

/// Longer `next=` values are not followed (no legitimate page address of
/// Ferry's comes close).
pub const MAX_NEXT_LEN: usize = 1024;

/// The origin candidates are resolved against. `.invalid` (RFC 2606) is
/// never a real host, so a value that resolves to this origin cannot have
/// named a host of its own.
const PROBE_BASE: &str = "http://ferry.invalid/login";

/// `next` if it is a same-origin path to follow after login, else `None`.
///
/// The value is returned unchanged (never a normalised form: the WHATWG
/// parser turns `/.//evil.example` into the path `//evil.example`, which as
/// a `Location` would be a scheme-relative URL to another host). It is
/// accepted only when all of these hold:
///
/// 1. It is at most [`MAX_NEXT_LEN`] bytes and starts with exactly one `/`:
///    not `//` (scheme-relative), not `/\` (browsers read `\` as `/`), and
///    so never with a scheme (`https:`, `javascript:`, `data:`) or a bare
///    host.
/// 2. Every byte is visible ASCII (`!` to `~`) other than `\`: no control
///    characters (C0, DEL; the URL parser silently *removes* tab, CR and LF,
///    so `/\t/evil.example` would become `//evil.example`), no spaces or
///    other whitespace (leading spaces and C0 controls are stripped too), no
///    backslash anywhere, and nothing non-ASCII (C1 controls, Unicode
///    whitespace, and look-alikes such as the fullwidth solidus `／` or the
///    fraction slash `⁄`, which IDNA would map to `/` in a host). A real
///    page address is already percent-encoded ASCII, so nothing legitimate
///    is lost.
/// 3. No percent-escape decodes to a control character (`%09`, `%0a`,
///    `%0D`, `%00`, `%7F`, `%C2%85`…). Browsers do not decode
///    percent-escapes when resolving a `Location`, so these cannot change
///    the origin; they are refused anyway because no Ferry address needs
///    them and an intermediary that decodes them could be tricked (header
///    or log injection). Encoded slashes and backslashes (`%2F`, `%5C`) are
///    allowed: they occur in legitimate query values and stay inert, as
///    the path `/%2F%2Fevil.example` on Ferry.
/// 4. Resolved with the `url` crate (the WHATWG parser browsers implement)
///    against a fixed base, it keeps the base's origin, carries no
///    credentials, and its normalised path does not start with `//`.
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    if next.len() > MAX_NEXT_LEN
        || bytes.first() != Some(&b'/')
        || matches!(bytes.get(1), Some(b'/' | b'\\'))
    {
        return None;
    }
    if !bytes.iter().all(|&b| b.is_ascii_graphic() && b != b'\\') {
        return None;
    }
    if String::from_utf8_lossy(&percent_decode(bytes))
        .chars()
        .any(char::is_control)
    {
        return None;
    }
    let base = Url::parse(PROBE_BASE).ok()?;
    let resolved = base.join(next).ok()?;
    let same_origin = resolved.origin() == base.origin()
        && resolved.username().is_empty()
        && resolved.password().is_none()
        && !resolved.path().starts_with("//");
    same_origin.then_some(next)
}

/// `bytes` with every `%XX` escape decoded (malformed escapes kept as is).
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
            && let Ok(byte) = u8::try_from(h * 16 + l)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::safe_next;
    use url::Url;

    /// Known open-redirect bypass forms: every one must be refused.
    const BYPASSES: &[&str] = &[
        // Scheme-relative and its slash/backslash variants.
        "//evil.com",
        "///evil.com",
        "////evil.com",
        "//evil.com/%2f..",
        "//evil.com@ferry.invalid",
        "/\\evil.com",
        "/\\\\evil.com",
        "\\/evil.com",
        "\\\\evil.com",
        "\\/\\/evil.com",
        "/\\/evil.com",
        "/x\\..\\\\evil.com",
        // Characters the URL parser strips (tab, CR, LF) or trims.
        "/\t/evil.com",
        "/\n/evil.com",
        "/\r/evil.com",
        "/\r\n/evil.com",
        "\t//evil.com",
        "/\t\\evil.com",
        " //evil.com",
        "/ /evil.com",
        "\x0b//evil.com",
        "/\x0b/evil.com",
        "/\x0c/evil.com",
        "/\x00",
        "/\x00/evil.com",
        "/\x1f/evil.com",
        "/\x7f/evil.com",
        "/users ",
        // Percent-encoded controls.
        "/%09/evil.com",
        "/%0a/evil.com",
        "/%0D/evil.com",
        "/%0d%0aSet-Cookie:x=y",
        "/%00",
        "/%7f",
        "/%C2%85/evil.com",
        // Schemes.
        "https:evil.com",
        "https:/evil.com",
        "http://evil.com",
        "https://evil.com",
        "HTTP://evil.com",
        "http:\\\\evil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "/javascript:alert(1)//\t",
        "data:text/html,<script>alert(1)</script>",
        "ftp://evil.com",
        // Not a path at all.
        "",
        "evil.com",
        "users",
        "./users",
        "../users",
        "?next=//evil.com",
        "#top",
        // Normalised by the parser into a scheme-relative path.
        "/.//evil.com",
        "/..//evil.com",
        "/%2e//evil.com",
        "/%2e%2e//evil.com",
        "/a/..//evil.com",
        // Non-ASCII: C1 controls, Unicode whitespace, look-alike slashes.
        "/\u{85}/evil.com",
        "/\u{a0}/evil.com",
        "/\u{2028}/evil.com",
        "/\u{3000}/evil.com",
        "/\u{feff}/evil.com",
        "/／evil.com",
        "／／evil.com",
        "/⁄evil.com",
        "/∕evil.com",
        "/＼evil.com",
    ];

    /// Local paths that must keep working.
    const LOCAL: &[&str] = &[
        "/",
        "/runs?status=failed",
        "/users",
        "/runs/run_0123abcd",
        "/home#recent",
        "/runs?status=failed&after=abc%2Fdef%3D%3D",
        "/connections/new/hubspot",
        "/evil.com",
        "/@evil.com",
        "/%2F%2Fevil.com",
        "/%5Cevil.com",
        "/a//b",
    ];

    fn probe(next: &str) -> String {
        let mut shown: String = next.escape_debug().collect();
        shown.truncate(60);
        shown
    }

    #[test]
    fn known_bypass_forms_are_refused() {
        let accepted: Vec<String> = BYPASSES
            .iter()
            .filter(|n| safe_next(n).is_some())
            .map(|n| probe(n))
            .collect();
        assert!(accepted.is_empty(), "followed: {accepted:?}");
    }

    #[test]
    fn local_paths_are_followed_unchanged() {
        for next in LOCAL {
            assert_eq!(safe_next(next), Some(*next), "{}", probe(next));
        }
    }

    #[test]
    fn very_long_values_are_refused() {
        let long = format!("/runs?q={}", "a".repeat(super::MAX_NEXT_LEN));
        assert_eq!(safe_next(&long), None);
        let long_slashes = format!("/{}", "/".repeat(10_000));
        assert_eq!(safe_next(&long_slashes), None);
    }

    /// Whatever is followed stays on the origin it is resolved against, the
    /// way a browser resolves a `Location` (over http and https, any port).
    #[test]
    fn whatever_is_followed_stays_on_the_origin() {
        for page in [
            "http://127.0.0.1:8080/login",
            "https://ferry.example/login?next=%2Fhome",
        ] {
            let page = Url::parse(page).unwrap();
            for next in BYPASSES.iter().chain(LOCAL) {
                if let Some(target) = safe_next(next) {
                    let resolved = page.join(target).unwrap();
                    assert_eq!(resolved.origin(), page.origin(), "{}", probe(next));
                }
            }
        }
    }
}
