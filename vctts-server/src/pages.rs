//! The three web pages (`/status`, `/admin`, `/playground`) and their assets.
//!
//! Every file under `vctts-server/assets/` is embedded in the binary with
//! `include_bytes!`, so the pages work on an offline machine: no CDN, no
//! file system, no build step. [`router`] mounts the pages, `/assets/{file}`
//! and a redirect from `/` to `/status`; the gateway merges it into its own
//! router, and the pages talk to the public (`/api/v3`) and admin
//! (`/admin/api`) APIs from the browser.
//!
//! Invariants:
//! - only the files listed in [`ASSETS`] are served; a request names one of
//!   them exactly or gets a 404 (no path is ever joined or read from disk);
//! - every answer carries a strict `Content-Security-Policy` that allows
//!   scripts, styles, fonts and connections from the page's own origin only
//!   (media and images may also be `blob:`/`data:` URLs the page made itself),
//!   plus `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
//!   `X-Frame-Options: DENY`;
//! - answers are revalidated (`Cache-Control: no-cache`) against a strong
//!   `ETag` computed from the bytes at compile time, so a new binary's pages
//!   are never mixed with an old binary's cached assets, and an unchanged file
//!   costs a `304 Not Modified`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The Content-Security-Policy of every page and asset.
///
/// `blob:` for media and images is needed for the playground's audio player
/// (responses become object URLs); nothing is ever loaded from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How browsers may cache pages and assets: keep, but revalidate each time.
pub const CACHE_CONTROL: &str = "no-cache";

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File name under `assets/` (what follows `/assets/` in the URL).
    pub name: &'static str,
    /// `Content-Type` it is served with.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
    /// FNV-1a 64 of the bytes, the `ETag`.
    pub hash: u64,
}

use vctts_core::hash::fnv1a64 as fnv1a;

macro_rules! asset {
    ($name:literal, $ty:expr) => {
        Asset {
            name: $name,
            content_type: $ty,
            body: include_bytes!(concat!("../assets/", $name)),
            hash: fnv1a(include_bytes!(concat!("../assets/", $name))),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file under `/assets/`.
pub static ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("common.js", JS),
    asset!("status.js", JS),
    asset!("admin.js", JS),
    asset!("playground.js", JS),
    asset!("wav.js", JS),
    asset!("favicon.svg", SVG),
];

/// The pages, by route.
pub static PAGES: &[(&str, Asset)] = &[
    ("/status", asset!("status.html", HTML)),
    ("/admin", asset!("admin.html", HTML)),
    ("/playground", asset!("playground.html", HTML)),
];

/// The embedded asset called `name`, if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The router of the pages: `/`, `/status`, `/admin`, `/playground`, `/assets/{file}`.
///
/// Generic over the state so the gateway can merge it into a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::temporary("/status") }))
        .route("/assets/{*file}", get(serve_asset));
    for (route, page) in PAGES {
        let page = *page;
        r = r.route(
            route,
            get(move |headers: HeaderMap| async move { respond(&page, &headers) }),
        );
    }
    r
}

async fn serve_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match asset(&file) {
        Some(a) => respond(a, &headers),
        None => not_found(&file),
    }
}

fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
}

fn etag_of(a: &Asset) -> String {
    format!("\"{:016x}\"", a.hash)
}

/// Whether an `If-None-Match` header value names `etag` (a list, `*`, or weak forms).
fn matches_etag(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t == etag
    })
}

fn respond(a: &Asset, req: &HeaderMap) -> Response {
    let etag = etag_of(a);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches_etag(v, &etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut res = a.body.into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
        res
    };
    let h = res.headers_mut();
    security_headers(h);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

fn not_found(file: &str) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "not_found",
            "message": format!("no asset named {file:?}"),
            "request_id": null,
        }
    });
    let mut res = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    security_headers(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_with(uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn get(uri: &str) -> Response {
        get_with(uri, &[]).await
    }

    async fn text(res: Response) -> String {
        String::from_utf8(to_bytes(res.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap()
    }

    fn header<'a>(res: &'a Response, name: &str) -> &'a str {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn each_page_is_html_with_the_security_headers() {
        for (route, _) in PAGES {
            let res = get(route).await;
            assert_eq!(res.status(), StatusCode::OK, "{route}");
            assert_eq!(header(&res, "content-type"), HTML, "{route}");
            assert_eq!(header(&res, "content-security-policy"), CONTENT_SECURITY_POLICY);
            assert_eq!(header(&res, "x-content-type-options"), "nosniff");
            assert_eq!(header(&res, "cache-control"), "no-cache");
            assert_eq!(header(&res, "x-frame-options"), "DENY");
            assert!(header(&res, "etag").starts_with('"'), "{route}");
            let body = text(res).await;
            assert!(body.starts_with("<!doctype html>"), "{route}");
        }
    }

    #[tokio::test]
    async fn root_redirects_to_status() {
        let res = get("/").await;
        assert_eq!(res.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(header(&res, "location"), "/status");
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        let cases = [
            ("/assets/app.css", CSS),
            ("/assets/status.js", JS),
            ("/assets/common.js", JS),
            ("/assets/favicon.svg", SVG),
        ];
        for (uri, ty) in cases {
            let res = get(uri).await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            assert_eq!(header(&res, "content-type"), ty, "{uri}");
            assert_eq!(header(&res, "content-security-policy"), CONTENT_SECURITY_POLICY);
        }
    }

    #[tokio::test]
    async fn unknown_or_path_like_assets_are_404_json() {
        for uri in [
            "/assets/nope.js",
            "/assets/../Cargo.toml",
            "/assets/%2e%2e/Cargo.toml",
            "/assets/sub/app.css",
            "/assets/APP.CSS",
        ] {
            let res = get(uri).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{uri}");
            let body: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
            assert_eq!(body["error"]["code"], "not_found", "{uri}");
        }
    }

    #[tokio::test]
    async fn a_matching_etag_is_not_modified_and_a_stale_one_is_not() {
        let first = get("/assets/app.css").await;
        let etag = header(&first, "etag").to_string();
        let again = get_with("/assets/app.css", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), etag);
        assert!(text(again).await.is_empty());
        let weak = format!("W/{etag}, \"other\"");
        assert_eq!(
            get_with("/status", &[("if-none-match", "\"other\"")])
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            get_with("/assets/app.css", &[("if-none-match", &weak)])
                .await
                .status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[test]
    fn etag_matching_rules() {
        assert!(matches_etag("\"a\"", "\"a\""));
        assert!(matches_etag("\"b\", W/\"a\"", "\"a\""));
        assert!(matches_etag("*", "\"a\""));
        assert!(!matches_etag("\"b\"", "\"a\""));
        assert!(!matches_etag("", "\"a\""));
    }

    #[test]
    fn asset_hashes_differ_and_fnv_matches_its_reference_values() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut hashes: Vec<u64> = ASSETS.iter().map(|a| a.hash).collect();
        hashes.extend(PAGES.iter().map(|(_, p)| p.hash));
        let n = hashes.len();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), n);
    }

    /// Every `/assets/...` URL a page or a stylesheet refers to is embedded, and
    /// every embedded asset is used by some page: a typo cannot ship a broken page.
    #[test]
    fn pages_refer_only_to_embedded_assets_and_use_them_all() {
        let mut used = std::collections::BTreeSet::new();
        let mut sources: Vec<(&str, &str)> = PAGES
            .iter()
            .map(|(r, p)| (*r, std::str::from_utf8(p.body).unwrap()))
            .collect();
        for a in ASSETS
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".css"))
        {
            sources.push((a.name, std::str::from_utf8(a.body).unwrap()));
        }
        for (from, src) in &sources {
            for (i, _) in src.match_indices("/assets/") {
                let rest = &src[i + "/assets/".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                assert!(
                    asset(&name).is_some(),
                    "{from} refers to /assets/{name}, which is not embedded"
                );
                used.insert(name);
            }
            // Module imports between scripts are relative (`./common.js`).
            for (i, _) in src.match_indices("from './") {
                let rest = &src[i + "from './".len()..];
                let name: String = rest.chars().take_while(|c| *c != '\'').collect();
                assert!(
                    asset(&name).is_some(),
                    "{from} imports ./{name}, which is not embedded"
                );
                used.insert(name);
            }
        }
        for a in ASSETS {
            assert!(
                used.contains(a.name),
                "asset {} is embedded but no page uses it",
                a.name
            );
        }
    }

    /// The pages must not need what the CSP forbids: no inline scripts or
    /// handlers, no inline styles, no other origins.
    #[test]
    fn pages_need_nothing_the_csp_forbids() {
        for (route, p) in PAGES {
            let html = std::str::from_utf8(p.body).unwrap();
            let lower = html.to_ascii_lowercase();
            for bad in [
                " style=",
                "<style",
                "javascript:",
                " onclick=",
                " onload=",
                " oninput=",
                "http://",
                "https://",
            ] {
                assert!(!lower.contains(bad), "{route} contains {bad:?}");
            }
            for (i, _) in lower.match_indices("<script") {
                let tag: String = lower[i..].chars().take_while(|c| *c != '>').collect();
                assert!(
                    tag.contains(" src=\"/assets/"),
                    "{route} has an inline script: {tag}"
                );
            }
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(a.body).unwrap();
            for bad in [
                "innerHTML",
                "eval(",
                "new Function",
                "setAttribute('style'",
                "document.write",
            ] {
                assert!(!js.contains(bad), "{} uses {bad}", a.name);
            }
        }
    }
}
