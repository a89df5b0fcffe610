//! larder's own HTTP endpoints, on the S3 port beside the S3 API: the
//! administration API, health and metrics, short links, and the upload
//! page with its files. They use the S3 layer's request context, bodies,
//! signature checks and error documents; the S3 API knows nothing of them
//! (the HTTP edge, `edge.rs`, chooses between the two).

pub mod admin;
mod health;
mod short_link;
mod upload_page;

use http::{HeaderMap, Method, Response, StatusCode};
use serde::Serialize;

use crate::s3::body::{self, ResponseBody};
use crate::s3::{RequestContext, S3Error, S3Result, S3};

/// One of larder's own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Admin,
    Health,
    Metrics,
    /// The upload page's script and style.
    Asset,
    ShortLink,
    UploadPage,
}

impl Endpoint {
    /// Its name in metrics and logs, beside S3's operation names.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Admin => "Admin",
            Endpoint::Health => "Health",
            Endpoint::Metrics => "Metrics",
            Endpoint::Asset => "Asset",
            Endpoint::ShortLink => "ShortLink",
            Endpoint::UploadPage => "UploadPage",
        }
    }
}

/// Is this request for one of larder's own endpoints? Everything else is
/// the S3 API's (which answers a path under `/_larder/` it does not know
/// as a bucket that cannot exist).
pub fn route(context: &RequestContext) -> Option<Endpoint> {
    let path = context.path.as_str();
    let get = context.method == Method::GET;
    if path == health::HEALTH_PATH {
        Some(Endpoint::Health)
    } else if health::is_metrics_scrape(context) {
        Some(Endpoint::Metrics)
    } else if path.starts_with(upload_page::ASSET_PREFIX) && get {
        Some(Endpoint::Asset)
    } else if short_link::is_short_link(path) && (get || context.method == Method::HEAD) {
        Some(Endpoint::ShortLink)
    } else if path.starts_with(upload_page::PAGE_PREFIX) && get {
        Some(Endpoint::UploadPage)
    } else if path.starts_with(admin::PATH_PREFIX) {
        Some(Endpoint::Admin)
    } else {
        None
    }
}

/// Answers a request `route` gave to one of larder's endpoints. Each
/// endpoint asks for the credentials it needs: none for health, assets
/// and short links (a short link is its own secret), the link's presigned
/// signature for the upload page, the root key for the admin API.
pub async fn serve(s3: &S3, endpoint: Endpoint, context: &mut RequestContext) -> S3Result {
    match endpoint {
        Endpoint::Health => health::health(s3),
        Endpoint::Metrics => health::metrics(s3, context).await,
        Endpoint::Asset => upload_page::asset(&context.path[upload_page::ASSET_PREFIX.len()..]),
        Endpoint::ShortLink => short_link::follow(s3, context).await,
        Endpoint::UploadPage => {
            s3.authenticate(context)?;
            upload_page::upload_page(s3, context).await
        }
        Endpoint::Admin => admin::handle(s3, context).await,
    }
}

/// Is this a browser on an upload link? A refusal then gets a page
/// ([`dead_link_page`]), not S3's XML.
pub fn is_browser_on_upload_link(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with(upload_page::PAGE_PREFIX) && upload_page::wants_html(headers)
}

pub fn dead_link_page(status: StatusCode) -> Response<ResponseBody> {
    upload_page::expired_page(status)
}

fn json_response(status: StatusCode, value: &impl Serialize) -> S3Result {
    let body = serde_json::to_vec_pretty(value).map_err(|_| S3Error::internal())?;
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body::full(body))
        .map_err(|_| S3Error::internal())
}
