//! Lifecycle rules: Put/Get/DeleteBucketLifecycleConfiguration (S3's
//! document, validated as S3 validates it), the `x-amz-expiration` header,
//! and the worker that applies the rules: expiring current objects,
//! removing noncurrent versions and lone delete markers, aborting stale
//! multipart uploads. It goes a few deletes at a time, never removes a
//! version Object Lock keeps, and can be stopped anywhere: every step is a
//! delete of its own, judged again on the next run.

use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;

use crate::store::{ObjectRecord, Selector, Store, StoreError};
use crate::timefmt;

use super::error::S3Error;
use super::headers::expected_digests;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// The bucket configuration document's name in the store.
const CONFIG_NAME: &str = "lifecycle";
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_RULES: usize = 1000;
const MAX_ID_CHARS: usize = 255;
/// Versions read from the index per step.
const BATCH: usize = 256;
/// The pause after each delete: the worker never hogs the disk.
const PACE: Duration = Duration::from_millis(5);
/// Above this many open connections the worker waits: clients come first.
const BUSY_CONNECTIONS: i64 = 8;
/// The longest it waits for a busy server before going on anyway.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// After each delete: a short pause, and a longer one while the server is
/// busy.
async fn pace() {
    tokio::time::sleep(PACE).await;
    let busy =
        || crate::metrics::global().open_connections.load(std::sync::atomic::Ordering::Relaxed) > BUSY_CONNECTIONS;
    let started = std::time::Instant::now();
    while busy() && started.elapsed() < MAX_PAUSE {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Which objects a rule applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub prefix: String,
    pub size_greater_than: Option<u64>,
    pub size_less_than: Option<u64>,
}

impl Filter {
    fn matches(&self, key: &str, size: u64) -> bool {
        key.starts_with(&self.prefix)
            && self.size_greater_than.is_none_or(|limit| size > limit)
            && self.size_less_than.is_none_or(|limit| size < limit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiration {
    Days(i64),
    /// Midnight UTC, Unix seconds.
    Date(i64),
    /// Remove a delete marker with no versions left below it.
    ExpiredObjectDeleteMarker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub enabled: bool,
    pub filter: Filter,
    pub expiration: Option<Expiration>,
    /// NoncurrentDays, and how many newer noncurrent versions to keep.
    pub noncurrent: Option<(i64, Option<u64>)>,
    pub abort_after_days: Option<i64>,
}

/// The most days a rule may count (a century), so that no date overflows.
const MAX_DAYS: i64 = 36_500;

fn positive(element: Option<&xml::Element>, message: &str) -> Result<Option<i64>, S3Error> {
    let Some(element) = element else { return Ok(None) };
    match element.text.trim().parse::<i64>() {
        Ok(value) if value > 0 && value <= MAX_DAYS => Ok(Some(value)),
        Ok(_) => Err(S3Error::invalid_argument(message)),
        Err(_) => Err(S3Error::malformed_xml()),
    }
}

fn size(element: Option<&xml::Element>) -> Result<Option<u64>, S3Error> {
    element.map(|size| size.text.trim().parse::<u64>().map_err(|_| S3Error::malformed_xml())).transpose()
}

fn parse_filter(rule: &xml::Element) -> Result<Filter, S3Error> {
    let Some(filter) = rule.child("Filter") else {
        // The older form: a Prefix directly in the rule.
        return Ok(Filter {
            prefix: rule.child("Prefix").map(|p| p.text.clone()).unwrap_or_default(),
            ..Filter::default()
        });
    };
    if rule.child("Prefix").is_some() {
        return Err(S3Error::malformed_xml());
    }
    if filter.child("Tag").is_some() || filter.child("And").is_some_and(|and| and.child("Tag").is_some()) {
        return Err(S3Error::not_implemented().with("Operation", "lifecycle filters on tags (larder keeps no tags)"));
    }
    let of = |element: &xml::Element| -> Result<Filter, S3Error> {
        Ok(Filter {
            prefix: element.child("Prefix").map(|p| p.text.clone()).unwrap_or_default(),
            size_greater_than: size(element.child("ObjectSizeGreaterThan"))?,
            size_less_than: size(element.child("ObjectSizeLessThan"))?,
        })
    };
    let conditions = ["Prefix", "ObjectSizeGreaterThan", "ObjectSizeLessThan"]
        .iter()
        .filter(|name| filter.child(name).is_some())
        .count();
    match filter.child("And") {
        Some(_) if conditions > 0 => Err(S3Error::malformed_xml()),
        Some(and) => of(and),
        // Outside `And`, one condition at most.
        None if conditions > 1 => Err(S3Error::malformed_xml()),
        None => of(filter),
    }
}

fn parse_rule(rule: &xml::Element) -> Result<Rule, S3Error> {
    let id = match rule.child("ID") {
        Some(id) => id.text.clone(),
        None => hex::encode(crate::store::BlobId::random().0),
    };
    if id.chars().count() > MAX_ID_CHARS {
        return Err(S3Error::invalid_argument("ID length should not exceed allowed limit of 255"));
    }
    let enabled = match rule.child("Status").map(|status| status.text.trim()) {
        Some("Enabled") => true,
        Some("Disabled") => false,
        _ => return Err(S3Error::malformed_xml()),
    };
    if rule.child("Transition").is_some() || rule.child("NoncurrentVersionTransition").is_some() {
        return Err(
            S3Error::not_implemented().with("Operation", "lifecycle transitions (larder has one storage class)")
        );
    }
    let expiration = match rule.child("Expiration") {
        None => None,
        Some(expiration) => {
            let days = positive(expiration.child("Days"), "'Days' for Expiration action must be a positive integer")?;
            let date = match expiration.child("Date") {
                None => None,
                Some(date) => {
                    let at = timefmt::parse_iso8601(date.text.trim()).ok_or_else(S3Error::malformed_xml)?;
                    if at % 86_400 != 0 {
                        return Err(S3Error::invalid_argument("'Date' must be at midnight GMT"));
                    }
                    Some(at)
                }
            };
            let marker = match expiration.child("ExpiredObjectDeleteMarker").map(|m| m.text.trim()) {
                None => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(_) => return Err(S3Error::malformed_xml()),
            };
            match (days, date, marker) {
                (Some(days), None, None) => Some(Expiration::Days(days)),
                (None, Some(date), None) => Some(Expiration::Date(date)),
                (None, None, Some(true)) => Some(Expiration::ExpiredObjectDeleteMarker),
                (None, None, Some(false)) => None,
                _ => return Err(S3Error::malformed_xml()),
            }
        }
    };
    let noncurrent = match rule.child("NoncurrentVersionExpiration") {
        None => None,
        Some(noncurrent) => {
            let days = positive(
                noncurrent.child("NoncurrentDays"),
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
            )?
            .ok_or_else(S3Error::malformed_xml)?;
            let newer = positive(
                noncurrent.child("NewerNoncurrentVersions"),
                "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer",
            )?;
            Some((days, newer.map(|newer| newer as u64)))
        }
    };
    let abort_after_days = match rule.child("AbortIncompleteMultipartUpload") {
        None => None,
        Some(abort) => Some(
            positive(
                abort.child("DaysAfterInitiation"),
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            )?
            .ok_or_else(S3Error::malformed_xml)?,
        ),
    };
    let filter = parse_filter(rule)?;
    if expiration.is_none() && noncurrent.is_none() && abort_after_days.is_none() {
        return Err(S3Error::invalid_request("At least one action needs to be specified in a rule"));
    }
    Ok(Rule { id, enabled, filter, expiration, noncurrent, abort_after_days })
}

/// Reads and checks a `LifecycleConfiguration` document.
pub fn parse(document: &[u8]) -> Result<Vec<Rule>, S3Error> {
    let root = xml::parse(document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "LifecycleConfiguration" {
        return Err(S3Error::malformed_xml());
    }
    let elements: Vec<&xml::Element> = root.children_named("Rule").collect();
    if elements.is_empty() || elements.len() > MAX_RULES {
        return Err(S3Error::malformed_xml());
    }
    let mut rules: Vec<Rule> = Vec::with_capacity(elements.len());
    for element in elements {
        let rule = parse_rule(element)?;
        if rules.iter().any(|other| other.id == rule.id) {
            return Err(S3Error::invalid_argument("Rule ID must be unique. Found same ID for more than one rule"));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The document S3 answers for the rules.
pub fn to_xml(rules: &[Rule]) -> String {
    let mut out = XmlWriter::new("LifecycleConfiguration");
    for rule in rules {
        out.open("Rule").element("ID", &rule.id).open("Filter");
        let filter = &rule.filter;
        let sized = filter.size_greater_than.is_some() || filter.size_less_than.is_some();
        if sized {
            out.open("And");
        }
        out.element("Prefix", &filter.prefix);
        if let Some(size) = filter.size_greater_than {
            out.element("ObjectSizeGreaterThan", &size.to_string());
        }
        if let Some(size) = filter.size_less_than {
            out.element("ObjectSizeLessThan", &size.to_string());
        }
        if sized {
            out.close("And");
        }
        out.close("Filter").element("Status", if rule.enabled { "Enabled" } else { "Disabled" });
        match rule.expiration {
            Some(Expiration::Days(days)) => {
                out.open("Expiration").element("Days", &days.to_string()).close("Expiration");
            }
            Some(Expiration::Date(date)) => {
                out.open("Expiration").element("Date", &timefmt::format_iso8601(date)).close("Expiration");
            }
            Some(Expiration::ExpiredObjectDeleteMarker) => {
                out.open("Expiration").element("ExpiredObjectDeleteMarker", "true").close("Expiration");
            }
            None => {}
        }
        if let Some((days, newer)) = rule.noncurrent {
            out.open("NoncurrentVersionExpiration").element("NoncurrentDays", &days.to_string());
            if let Some(newer) = newer {
                out.element("NewerNoncurrentVersions", &newer.to_string());
            }
            out.close("NoncurrentVersionExpiration");
        }
        if let Some(days) = rule.abort_after_days {
            out.open("AbortIncompleteMultipartUpload")
                .element("DaysAfterInitiation", &days.to_string())
                .close("AbortIncompleteMultipartUpload");
        }
        out.close("Rule");
    }
    out.finish("LifecycleConfiguration")
}

pub async fn put_bucket_lifecycle(s3: &S3, context: &mut RequestContext) -> S3Result {
    let (expected, _) = expected_digests(&context.headers, context.auth.as_ref())?;
    if expected.md5.is_none() && expected.checksum.is_none() {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let rules = parse(&document)?;
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, Some(to_xml(&rules).into_bytes())).await?;
    s3.lifecycles.forget(&context.bucket);
    empty_response(StatusCode::OK)
}

pub async fn get_bucket_lifecycle(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = s3.store.bucket_config(&context.bucket, CONFIG_NAME).await?.ok_or_else(|| {
        S3Error::new(
            "NoSuchLifecycleConfiguration",
            StatusCode::NOT_FOUND,
            "The lifecycle configuration does not exist",
        )
        .with("BucketName", context.bucket.clone())
    })?;
    xml_response(String::from_utf8_lossy(&document).into_owned())
}

pub async fn delete_bucket_lifecycle(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, None).await?;
    s3.lifecycles.forget(&context.bucket);
    empty_response(StatusCode::NO_CONTENT)
}

/// When the current version `record` of `key` expires by `rules`, and by
/// which rule: S3 rounds `Days` up to the next midnight UTC.
fn expiry(rules: &[Rule], key: &str, record: &ObjectRecord, day_secs: i64) -> Option<(i64, String)> {
    rules
        .iter()
        .filter(|rule| rule.enabled && rule.filter.matches(key, record.size))
        .filter_map(|rule| {
            let at = match rule.expiration? {
                Expiration::Days(days) if day_secs == 86_400 => {
                    record.last_modified.saturating_add(days * 86_400).div_euclid(86_400) * 86_400 + 86_400
                }
                Expiration::Days(days) => record.last_modified.saturating_add(days.saturating_mul(day_secs)),
                Expiration::Date(date) => date,
                Expiration::ExpiredObjectDeleteMarker => return None,
            };
            Some((at, rule.id.clone()))
        })
        .min_by_key(|(at, _)| *at)
}

/// What a lifecycle run did (`larder status` shows the last one).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Unix seconds.
    pub started: i64,
    pub finished: i64,
    pub buckets: u64,
    pub expired: u64,
    pub noncurrent_removed: u64,
    pub delete_markers_removed: u64,
    pub uploads_aborted: u64,
    /// Versions a rule would have removed, kept by Object Lock.
    pub kept_by_object_lock: u64,
    pub errors: u64,
}

/// The worker's state, shared by the daily run and `larder lifecycle run`.
pub struct Worker {
    /// One run at a time.
    running: tokio::sync::Mutex<()>,
    last: Mutex<Option<Summary>>,
}

/// The index note that keeps the last run's summary across restarts.
const LAST_RUN_NOTE: &str = "lifecycle-last-run";

impl Worker {
    /// Starts with the summary a previous process saved, if any.
    pub fn new(store: &Store) -> Worker {
        let saved = store.note(LAST_RUN_NOTE).ok().flatten();
        let last = saved.and_then(|document| serde_json::from_slice(&document).ok());
        Worker { running: tokio::sync::Mutex::new(()), last: Mutex::new(last) }
    }

    pub fn last_run(&self) -> Option<Summary> {
        self.last.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }
}

impl S3 {
    /// The bucket's rules, parsed once and kept until they change.
    async fn lifecycle_rules(&self, bucket: &str) -> Result<Option<std::sync::Arc<Vec<Rule>>>, S3Error> {
        let (cached, generation) = self.lifecycles.get(bucket);
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let rules = match self.store.bucket_config(bucket, CONFIG_NAME).await {
            Ok(Some(document)) => parse(&document).ok().map(std::sync::Arc::new),
            Ok(None) | Err(StoreError::NoSuchBucket) => None,
            Err(error) => return Err(error.into()),
        };
        self.lifecycles.fill(bucket, rules.clone(), generation);
        Ok(rules)
    }

    /// `x-amz-expiration` for a current version, as S3 sends it on GET and HEAD.
    pub(super) async fn expiration_header(&self, bucket: &str, key: &str, record: &ObjectRecord) -> Option<String> {
        let rules = self.lifecycle_rules(bucket).await.ok()??;
        let (at, rule) = expiry(&rules, key, record, self.config.lifecycle_day_secs)?;
        Some(format!("expiry-date=\"{}\", rule-id=\"{}\"", timefmt::format_http_date(at), rule.replace('"', "")))
    }

    /// Applies every bucket's rules once; one run at a time.
    pub async fn run_lifecycle(&self) -> Summary {
        let _running = self.lifecycle.running.lock().await;
        let mut summary = Summary { started: self.clock.now(), ..Summary::default() };
        let buckets = match self.store.list_buckets().await {
            Ok(buckets) => buckets,
            Err(error) => {
                tracing::warn!(%error, "the lifecycle run could not list buckets");
                summary.errors += 1;
                Vec::new()
            }
        };
        for (bucket, _) in buckets {
            let Ok(Some(rules)) = self.lifecycle_rules(&bucket).await else { continue };
            let rules: Vec<Rule> = rules.iter().filter(|rule| rule.enabled).cloned().collect();
            if rules.is_empty() {
                continue;
            }
            summary.buckets += 1;
            self.apply_to_versions(&bucket, &rules, &mut summary).await;
            self.abort_stale_uploads(&bucket, &rules, &mut summary).await;
        }
        summary.finished = self.clock.now();
        tracing::info!(?summary, "lifecycle run");
        *self.lifecycle.last.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(summary.clone());
        let document = serde_json::to_vec(&summary).unwrap_or_default();
        if let Err(error) = self.store.set_note(LAST_RUN_NOTE, document).await {
            tracing::warn!(%error, "the lifecycle run's summary was not saved");
        }
        summary
    }

    /// Walks every version of the bucket, one key's versions at a time.
    async fn apply_to_versions(&self, bucket: &str, rules: &[Rule], summary: &mut Summary) {
        let mut after: Option<(Vec<u8>, Option<Selector>)> = None;
        let mut group: Vec<(String, ObjectRecord)> = Vec::new();
        loop {
            let batch = match self.store.list_versions(bucket, "", after.clone(), BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(bucket, %error, "the lifecycle run could not list versions");
                    summary.errors += 1;
                    return;
                }
            };
            let exhausted = batch.len() < BATCH;
            for (key, record, _) in batch {
                after = Some((key.clone().into_bytes(), Some(Selector::Version(record.version))));
                if group.first().is_some_and(|(first, _)| *first != key) {
                    self.apply_to_key(bucket, rules, std::mem::take(&mut group), summary).await;
                }
                group.push((key, record));
            }
            if exhausted {
                if !group.is_empty() {
                    self.apply_to_key(bucket, rules, group, summary).await;
                }
                return;
            }
        }
    }

    /// One key's versions, newest first: the current one may expire,
    /// noncurrent ones may go, a delete marker left alone may go.
    async fn apply_to_key(
        &self,
        bucket: &str,
        rules: &[Rule],
        versions: Vec<(String, ObjectRecord)>,
        summary: &mut Summary,
    ) {
        let day = self.config.lifecycle_day_secs;
        let now = self.clock.now();
        let Some((key, _)) = versions.first() else { return };
        let key = key.clone();
        let applying = |record: &ObjectRecord| -> Vec<&Rule> {
            rules.iter().filter(|rule| rule.filter.matches(&key, record.size)).collect()
        };
        let (_, newest) = &versions[0];
        // The current object, if the newest version is one.
        // The newest version is the current object unless it is a marker.
        if !newest.delete_marker {
            // The date `x-amz-expiration` announced.
            let due = expiry(rules, &key, newest, day).is_some_and(|(at, _)| now >= at);
            if due {
                match self.store.delete_object(bucket, &key).await {
                    Ok(_) => summary.expired += 1,
                    Err(error) => {
                        tracing::warn!(bucket, key, %error, "lifecycle expiration failed");
                        summary.errors += 1;
                    }
                }
                pace().await;
            }
        }
        // Noncurrent versions: each became noncurrent when the next newer
        // one was written.
        let mut removed_all_below = true;
        for (rank, pair) in versions.windows(2).enumerate() {
            let (newer, record) = (&pair[0].1, &pair[1].1);
            let due = applying(record).iter().any(|rule| match rule.noncurrent {
                Some((days, keep)) => {
                    now >= newer.last_modified.saturating_add(days.saturating_mul(day))
                        && rank as u64 >= keep.unwrap_or(0)
                }
                None => false,
            });
            if !due {
                removed_all_below = false;
                continue;
            }
            if self.remove_version(bucket, &key, record, summary).await {
                summary.noncurrent_removed += 1;
            } else {
                removed_all_below = false;
            }
        }
        // A delete marker with nothing left below it.
        let lone_marker = newest.delete_marker && (versions.len() == 1 || removed_all_below);
        if lone_marker
            && applying(newest).iter().any(|rule| rule.expiration == Some(Expiration::ExpiredObjectDeleteMarker))
            && self.remove_version(bucket, &key, newest, summary).await
        {
            summary.delete_markers_removed += 1;
        }
    }

    /// Removes one version unless Object Lock keeps it; true if removed.
    async fn remove_version(&self, bucket: &str, key: &str, record: &ObjectRecord, summary: &mut Summary) -> bool {
        let now = self.clock.retention_now();
        let judged = record.sequence;
        let guard: Box<crate::store::DeleteGuard> = Box::new(move |record: &ObjectRecord| {
            if super::object_lock::holds(&record.lock, now, false) {
                Err(StoreError::ObjectLocked)
            } else if record.sequence != judged {
                // The null version is another one by now (a write since,
                // or this run's own delete marker): judged next time.
                Err(StoreError::PreconditionFailed)
            } else {
                Ok(())
            }
        });
        let removed = self.store.delete_version(bucket, key, record.version, guard).await;
        pace().await;
        match removed {
            Ok(_) => true,
            Err(StoreError::ObjectLocked) => {
                summary.kept_by_object_lock += 1;
                false
            }
            Err(StoreError::PreconditionFailed) => false,
            Err(error) => {
                tracing::warn!(bucket, key, %error, "lifecycle removal failed");
                summary.errors += 1;
                false
            }
        }
    }

    async fn abort_stale_uploads(&self, bucket: &str, rules: &[Rule], summary: &mut Summary) {
        let day = self.config.lifecycle_day_secs;
        let now = self.clock.now();
        let uploads = match self.store.list_uploads(bucket, "", None, None, usize::MAX).await {
            Ok(uploads) => uploads,
            Err(error) => {
                tracing::warn!(bucket, %error, "the lifecycle run could not list uploads");
                summary.errors += 1;
                return;
            }
        };
        for (id, upload) in uploads {
            let due = rules.iter().any(|rule| {
                rule.abort_after_days.is_some_and(|days| now >= upload.created.saturating_add(days.saturating_mul(day)))
                    && upload.key.starts_with(&rule.filter.prefix)
            });
            if due {
                match self.store.abort_upload(id, bucket, &upload.key).await {
                    Ok(()) => summary.uploads_aborted += 1,
                    Err(StoreError::NoSuchUpload) => {}
                    Err(error) => {
                        tracing::warn!(bucket, %error, "lifecycle abort failed");
                        summary.errors += 1;
                    }
                }
                pace().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(rules: &str) -> Vec<u8> {
        format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>").into_bytes()
    }

    #[test]
    fn rules_parse_and_round_trip() {
        let rules = parse(&document(
            "<Rule><ID>logs</ID><Filter><And><Prefix>logs/</Prefix><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
             <Rule><ID>uploads</ID><Prefix></Prefix><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>\
             <Rule><ID>markers</ID><Filter></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>\
             <Rule><ID>date</ID><Filter><Prefix>old/</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>",
        ))
        .unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(
            rules[0].filter,
            Filter { prefix: "logs/".into(), size_greater_than: Some(10), size_less_than: None }
        );
        assert_eq!(rules[0].noncurrent, Some((7, Some(3))));
        assert!(!rules[1].enabled);
        assert_eq!(rules[2].expiration, Some(Expiration::ExpiredObjectDeleteMarker));
        assert_eq!(parse(to_xml(&rules).as_bytes()).unwrap(), rules);
    }

    #[test]
    fn s3s_refusals() {
        let expiring = |id: &str| {
            format!(
                "<Rule><ID>{id}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
            )
        };
        let code = |rules: &str| parse(&document(rules)).unwrap_err().code;
        assert_eq!(code(&(expiring("a") + &expiring("a"))), "InvalidArgument", "duplicate ids");
        assert_eq!(code(&expiring(&"x".repeat(256))), "InvalidArgument", "a long id");
        assert_eq!(
            code("<Rule><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration></Rule>"),
            "MalformedXML"
        );
        assert_eq!(code("<Rule><Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration></Rule>"), "InvalidArgument");
        assert_eq!(
            code("<Rule><Filter/><Status>Enabled</Status><Expiration><Date>tomorrow</Date></Expiration></Rule>"),
            "MalformedXML"
        );
        assert_eq!(
            code("<Rule><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration></Rule>"),
            "InvalidArgument"
        );
        assert_eq!(code("<Rule><Filter/><Status>Enabled</Status></Rule>"), "InvalidRequest");
        assert_eq!(code("<Rule><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"), "MalformedXML");
        assert_eq!(code(""), "MalformedXML");
        assert_eq!(
            code("<Rule><Filter/><Status>Enabled</Status><Expiration><Days>9223372036854775807</Days></Expiration></Rule>"),
            "InvalidArgument",
            "a count of days no date can hold"
        );
    }

    #[test]
    fn expiry_rounds_up_to_midnight() {
        let rules = parse(&document(
            "<Rule><ID>r</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>",
        ))
        .unwrap();
        let record = ObjectRecord {
            blob: crate::store::BlobId([0; 16]),
            size: 1,
            etag: String::new(),
            last_modified: timefmt::parse_iso8601("2030-01-01T10:00:00Z").unwrap(),
            sequence: 1,
            version: None,
            delete_marker: false,
            lock: Default::default(),
            full_object_checksum: false,
            checksum: None,
            meta: Default::default(),
            parts: Vec::new(),
        };
        let (at, rule) = expiry(&rules, "k", &record, 86_400).unwrap();
        assert_eq!(timefmt::format_iso8601(at), "2030-01-03T00:00:00.000Z");
        assert_eq!(rule, "r");
    }
}
