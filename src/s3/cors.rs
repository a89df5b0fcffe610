//! CORS: PutBucketCors, GetBucketCors, DeleteBucketCors; preflight
//! OPTIONS answered from the bucket's rules; CORS headers on the answers
//! to actual requests, so a web page on another origin can upload through
//! a presigned URL.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::iam::policy_wildcard_match as wildcard_match;
use crate::store::StoreError;

use super::body::{self, ResponseBody};
use super::error::S3Error;
use super::headers::header;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// The name the rules are kept under in the bucket's configuration.
pub const CONFIG_NAME: &str = "cors";
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRule {
    id: Option<String>,
    origins: Vec<String>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Vec<String>,
    max_age: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    rules: Vec<CorsRule>,
}

impl CorsConfig {
    pub fn parse(document: &[u8]) -> Result<CorsConfig, S3Error> {
        let root = xml::parse(document).map_err(|_| S3Error::malformed_xml())?;
        if root.name != "CORSConfiguration" {
            return Err(S3Error::malformed_xml());
        }
        let mut rules = Vec::new();
        for rule in root.children_named("CORSRule") {
            let texts = |name: &str| rule.children_named(name).map(|e| e.text.trim().to_string()).collect::<Vec<_>>();
            let methods = texts("AllowedMethod");
            if let Some(bad) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
                return Err(S3Error::invalid_request(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {bad}"
                )));
            }
            let origins = texts("AllowedOrigin");
            if origins.is_empty() || methods.is_empty() {
                return Err(S3Error::malformed_xml());
            }
            let max_age = match rule.child("MaxAgeSeconds") {
                Some(element) => Some(element.text.trim().parse().map_err(|_| S3Error::malformed_xml())?),
                None => None,
            };
            let id = rule.child("ID").map(|e| e.text.trim().to_string());
            rules.push(CorsRule {
                id,
                origins,
                methods,
                headers: texts("AllowedHeader"),
                expose: texts("ExposeHeader"),
                max_age,
            });
        }
        if rules.is_empty() || rules.len() > MAX_RULES {
            return Err(S3Error::malformed_xml());
        }
        Ok(CorsConfig { rules })
    }

    pub fn to_xml(&self) -> String {
        let mut out = XmlWriter::new("CORSConfiguration");
        for rule in &self.rules {
            out.open("CORSRule");
            if let Some(id) = &rule.id {
                out.element("ID", id);
            }
            for (name, values) in [
                ("AllowedHeader", &rule.headers),
                ("AllowedMethod", &rule.methods),
                ("AllowedOrigin", &rule.origins),
                ("ExposeHeader", &rule.expose),
            ] {
                for value in values {
                    out.element(name, value);
                }
            }
            if let Some(max_age) = rule.max_age {
                out.element("MaxAgeSeconds", &max_age.to_string());
            }
            out.close("CORSRule");
        }
        out.finish("CORSConfiguration")
    }

    /// The first rule that allows `origin` to use `method` with `headers`.
    fn find(&self, origin: &str, method: &str, headers: &[String]) -> Option<&CorsRule> {
        self.rules.iter().find(|rule| {
            rule.origins.iter().any(|allowed| wildcard_match(allowed, origin))
                && rule.methods.iter().any(|allowed| allowed == method)
                && headers.iter().all(|requested| {
                    rule.headers
                        .iter()
                        .any(|allowed| wildcard_match(&allowed.to_ascii_lowercase(), &requested.to_ascii_lowercase()))
                })
        })
    }
}

/// The CORS headers a matching rule puts on an answer.
fn apply(headers: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if rule.origins.iter().any(|o| o == "*") {
        set("access-control-allow-origin", "*");
    } else {
        set("access-control-allow-origin", origin);
        set("access-control-allow-credentials", "true");
    }
    set("access-control-allow-methods", &rule.methods.join(", "));
    if !rule.expose.is_empty() {
        set("access-control-expose-headers", &rule.expose.join(", "));
    }
    if let Some(max_age) = rule.max_age {
        set("access-control-max-age", &max_age.to_string());
    }
    set("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

fn forbidden(message: &str) -> S3Error {
    S3Error::new("AccessForbidden", StatusCode::FORBIDDEN, message)
}

impl S3 {
    /// The bucket's CORS rules, parsed once and kept until they change.
    async fn cors_config(&self, bucket: &str) -> Result<Option<Arc<CorsConfig>>, S3Error> {
        if bucket.is_empty() {
            return Ok(None);
        }
        let (cached, generation) = self.cors.get(bucket);
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let config = match self.store.bucket_config(bucket, CONFIG_NAME).await {
            Ok(Some(document)) => CorsConfig::parse(&document).ok().map(Arc::new),
            Ok(None) => None,
            Err(StoreError::NoSuchBucket) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        self.cors.fill(bucket, config.clone(), generation);
        Ok(config)
    }

    pub(super) fn forget_cors(&self, bucket: &str) {
        self.cors.forget(bucket);
    }

    /// Adds CORS headers to the answer to an actual request that carries
    /// an `Origin` the bucket's rules allow.
    pub(crate) async fn add_cors_headers(
        &self,
        bucket: &str,
        origin: &str,
        method: &Method,
        response: &mut Response<ResponseBody>,
    ) {
        if let Ok(Some(config)) = self.cors_config(bucket).await {
            if let Some(rule) = config.find(origin, method.as_str(), &[]) {
                apply(response.headers_mut(), rule, origin);
            }
        }
    }
}

/// A preflight OPTIONS request, answered without authentication.
pub async fn preflight(s3: &S3, context: &mut RequestContext) -> S3Result {
    let origin = header(&context.headers, "origin").ok_or_else(|| {
        S3Error::new("BadRequest", StatusCode::BAD_REQUEST, "Insufficient information. Origin request header needed.")
    })?;
    let method = header(&context.headers, "access-control-request-method").ok_or_else(|| {
        S3Error::new("BadRequest", StatusCode::BAD_REQUEST, "Invalid Access-Control-Request-Method: null")
    })?;
    let requested: Vec<String> = header(&context.headers, "access-control-request-headers")
        .map(|list| list.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect())
        .unwrap_or_default();
    let Some(config) = s3.cors_config(&context.bucket).await? else {
        return Err(forbidden("CORSResponse: CORS is not enabled for this bucket."));
    };
    let rule = config.find(origin, method, &requested).ok_or_else(|| {
        forbidden("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
    })?;
    let mut response = Response::new(body::empty());
    let headers = response.headers_mut();
    apply(headers, rule, origin);
    if !requested.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&requested.join(", ")) {
            headers.insert("access-control-allow-headers", value);
        }
    }
    Ok(response)
}

pub async fn put_bucket_cors(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let config = CorsConfig::parse(&document)?;
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, Some(config.to_xml().into_bytes())).await?;
    s3.forget_cors(&context.bucket);
    empty_response(StatusCode::OK)
}

pub async fn get_bucket_cors(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = s3.store.bucket_config(&context.bucket, CONFIG_NAME).await?.ok_or_else(|| {
        S3Error::new("NoSuchCORSConfiguration", StatusCode::NOT_FOUND, "The CORS configuration does not exist")
            .with("BucketName", context.bucket.clone())
    })?;
    xml_response(String::from_utf8_lossy(&document).into_owned())
}

pub async fn delete_bucket_cors(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, None).await?;
    s3.forget_cors(&context.bucket);
    empty_response(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_origins_methods_and_headers() {
        let config = CorsConfig::parse(
            br#"<CORSConfiguration><CORSRule><AllowedOrigin>http://*.example.test</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedHeader>content-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>"#,
        )
        .unwrap();
        assert!(config.find("http://app.example.test", "PUT", &["Content-Type".into()]).is_some());
        assert!(config.find("http://app.example.test", "DELETE", &[]).is_none());
        assert!(config.find("http://evil.test", "PUT", &[]).is_none());
        assert!(config.find("http://app.example.test", "PUT", &["x-custom".into()]).is_none());
        assert_eq!(CorsConfig::parse(config.to_xml().as_bytes()).unwrap(), config);
        assert!(CorsConfig::parse(b"<CORSConfiguration></CORSConfiguration>").is_err());
        let error = CorsConfig::parse(b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>").unwrap_err();
        assert_eq!(error.code, "InvalidRequest");
    }
}
