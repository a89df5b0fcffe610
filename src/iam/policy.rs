//! Bucket policies: S3's JSON format, for a documented subset. Parsing
//! refuses anything outside the subset with a message naming it, so a
//! policy is never silently weaker than it reads.
//!
//! Supported: `Version`, `Id`; statements with `Sid`, `Effect`
//! (Allow/Deny), `Principal` (`*`, `{"AWS": "*"}`, or key identities:
//! an access key id, a key name, or an ARN ending in either), `Action`
//! (`s3:` actions, wildcards allowed), `Resource` (ARNs of this bucket and
//! its objects, wildcards allowed), and `Condition` with `IpAddress`,
//! `NotIpAddress` (each also `...IfExists`) on `aws:SourceIp`, and `Bool`
//! (also `BoolIfExists`) on `aws:SecureTransport` and `aws:ViaAWSService`.

use std::net::IpAddr;

use serde_json::Value;

use super::cidr::Cidr;

/// Largest policy document, as in S3.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    /// `None` is everyone (`*`).
    principals: Option<Vec<String>>,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `IpAddress` (`negated: false`) or `NotIpAddress`, `IfExists` or not
    /// (the source address always exists here, so both read the same).
    SourceIp {
        ranges: Vec<Cidr>,
        negated: bool,
    },
    SecureTransport(bool),
    /// `aws:ViaAWSService`: no AWS service ever calls larder on a
    /// principal's behalf, so the key is always false.
    ViaAwsService(bool),
}

/// Who asks, for what, from where.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    /// Access key id and key name; `None` for anonymous requests.
    pub principal: Option<(&'a str, &'a str)>,
    /// For temporary credentials, the key that issued them: a statement
    /// naming it applies to them too (a Deny cannot be dodged that way).
    pub issuer: Option<(&'a str, &'a str)>,
    /// `s3:GetObject` and so on.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub source: IpAddr,
    pub secure: bool,
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deny,
    Allow,
    /// No statement applies.
    Silent,
}

fn malformed(message: impl Into<String>) -> String {
    message.into()
}

/// A string or a list of strings.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(|| malformed(format!("{what} must be strings"))))
            .collect(),
        _ => Err(malformed(format!("{what} must be a string or a list of strings"))),
    }
}

/// `*` and `?` wildcards, as IAM matches them.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

impl Policy {
    /// Parses and checks a policy for `bucket`.
    pub fn parse(document: &[u8], bucket: &str) -> Result<Policy, String> {
        Self::parse_with(document, Some(bucket))
    }

    fn parse_with(document: &[u8], bucket: Option<&str>) -> Result<Policy, String> {
        if document.len() > MAX_POLICY_BYTES {
            return Err(malformed("Policies must be 20 KB or smaller"));
        }
        let root: Value = serde_json::from_slice(document).map_err(|_| malformed("Policies must be valid JSON"))?;
        let root = root.as_object().ok_or_else(|| malformed("Policies must be a JSON object"))?;
        for (name, value) in root {
            match name.as_str() {
                "Version" => {
                    if !matches!(value.as_str(), Some("2012-10-17" | "2008-10-17")) {
                        return Err(malformed("The policy Version must be 2012-10-17 or 2008-10-17"));
                    }
                }
                "Id" | "Statement" => {}
                other => return Err(malformed(format!("Unsupported policy element: {other}"))),
            }
        }
        let statements = match root.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return Err(malformed("Missing required field Statement")),
        };
        if statements.is_empty() {
            return Err(malformed("Missing required field Statement"));
        }
        let statements = statements.into_iter().map(|s| Statement::parse(s, bucket)).collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    /// A policy that denies every request (what a stored policy that no
    /// longer parses is taken to say).
    pub fn deny_everything() -> Policy {
        Policy {
            statements: vec![Statement {
                allow: false,
                principals: None,
                actions: vec!["*".into()],
                resources: vec!["*".into()],
                conditions: Vec::new(),
            }],
        }
    }

    /// Parses a session policy (AssumeRole's `Policy`): no `Principal`,
    /// resources in any bucket.
    pub fn parse_session(document: &[u8]) -> Result<Policy, String> {
        Self::parse_with(document, None)
    }

    /// Explicit Deny wins; else an Allow; else silence.
    pub fn evaluate(&self, request: &PolicyRequest<'_>) -> Verdict {
        let mut verdict = Verdict::Silent;
        for statement in self.statements.iter().filter(|s| s.applies(request)) {
            if !statement.allow {
                return Verdict::Deny;
            }
            verdict = Verdict::Allow;
        }
        verdict
    }
}

impl Statement {
    /// `bucket` is the policy's bucket; `None` for a session policy.
    fn parse(value: &Value, bucket: Option<&str>) -> Result<Statement, String> {
        let object = value.as_object().ok_or_else(|| malformed("A Statement must be a JSON object"))?;
        for name in object.keys() {
            if !matches!(name.as_str(), "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition") {
                return Err(malformed(format!("Unsupported statement element: {name}")));
            }
        }
        let allow = match object.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(malformed("Effect must be Allow or Deny")),
        };
        let principals = match object.get("Principal") {
            Some(Value::String(star)) if star == "*" => None,
            Some(Value::Object(map)) => {
                let mut principals = Vec::new();
                for (kind, value) in map {
                    if kind != "AWS" {
                        return Err(malformed(format!("Unsupported principal type: {kind}")));
                    }
                    principals.extend(strings(value, "Principal")?);
                }
                if principals.iter().any(|p| p == "*") {
                    None
                } else {
                    Some(principals)
                }
            }
            Some(_) => return Err(malformed("Invalid principal in policy")),
            None if bucket.is_none() => None,
            None => return Err(malformed("Missing required field Principal")),
        };
        let actions =
            strings(object.get("Action").ok_or_else(|| malformed("Missing required field Action"))?, "Action")?;
        for action in &actions {
            if !(action == "*" || action.starts_with("s3:")) {
                return Err(malformed(format!("Policy has invalid action: {action}")));
            }
        }
        let resources =
            strings(object.get("Resource").ok_or_else(|| malformed("Missing required field Resource"))?, "Resource")?;
        for resource in &resources {
            // `*` is every resource: fine in a session policy, which a
            // key's own rights bound anyway; a bucket policy names its bucket.
            if resource == "*" && bucket.is_none() {
                continue;
            }
            let Some(path) = resource.strip_prefix("arn:aws:s3:::") else {
                return Err(malformed(format!("Policy has invalid resource: {resource}")));
            };
            let resource_bucket = path.split('/').next().unwrap_or_default();
            if bucket.is_some_and(|bucket| !wildcard_match(resource_bucket, bucket)) {
                return Err(malformed(format!("Policy has invalid resource: {resource} (not in this bucket)")));
            }
        }
        let mut conditions = Vec::new();
        if let Some(condition) = object.get("Condition") {
            let map = condition.as_object().ok_or_else(|| malformed("Condition must be a JSON object"))?;
            for (operator, block) in map {
                let block = block
                    .as_object()
                    .ok_or_else(|| malformed(format!("Condition {operator} must be a JSON object")))?;
                for (key, values) in block {
                    conditions.push(Condition::parse(operator, key, values)?);
                }
            }
        }
        Ok(Statement { allow, principals, actions, resources, conditions })
    }

    fn applies(&self, request: &PolicyRequest<'_>) -> bool {
        let names = |identity: Option<(&str, &str)>| {
            let Some((access_key, name)) = identity else { return false };
            self.principals.iter().flatten().any(|principal| {
                let last = principal.rsplit(['/', ':']).next().unwrap_or(principal);
                principal == access_key || principal == name || last == access_key || last == name
            })
        };
        let principal_matches = match (&self.principals, request.principal) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), identity) => names(identity) || names(request.issuer),
        };
        principal_matches
            && self.actions.iter().any(|pattern| {
                pattern == "*" || wildcard_match(&pattern.to_ascii_lowercase(), &request.action.to_ascii_lowercase())
            })
            && self.resources.iter().any(|pattern| wildcard_match(pattern, request.resource))
            && self.conditions.iter().all(|condition| condition.holds(request))
    }
}

impl Condition {
    fn parse(operator: &str, key: &str, values: &Value) -> Result<Condition, String> {
        let values = strings(values, "Condition values").or_else(|_| match values {
            Value::Bool(flag) => Ok(vec![flag.to_string()]),
            _ => Err(malformed(format!("Invalid Condition values for {operator}"))),
        })?;
        let base = operator.strip_suffix("IfExists").unwrap_or(operator);
        match (base, key.to_ascii_lowercase().as_str()) {
            ("IpAddress" | "NotIpAddress", "aws:sourceip") => {
                let ranges = values
                    .iter()
                    .map(|v| v.parse::<Cidr>().map_err(|_| malformed(format!("Invalid IP address in Condition: {v}"))))
                    .collect::<Result<_, _>>()?;
                Ok(Condition::SourceIp { ranges, negated: base == "NotIpAddress" })
            }
            ("Bool", "aws:securetransport" | "aws:viaawsservice") => {
                let flag = match values.as_slice() {
                    [value] if value.eq_ignore_ascii_case("true") => true,
                    [value] if value.eq_ignore_ascii_case("false") => false,
                    _ => return Err(malformed(format!("{key} takes true or false"))),
                };
                Ok(if key.eq_ignore_ascii_case("aws:SecureTransport") {
                    Condition::SecureTransport(flag)
                } else {
                    Condition::ViaAwsService(flag)
                })
            }
            ("IpAddress" | "NotIpAddress" | "Bool", _) => Err(malformed(format!("Unsupported condition key: {key}"))),
            _ => Err(malformed(format!("Unsupported condition operator: {operator}"))),
        }
    }

    fn holds(&self, request: &PolicyRequest<'_>) -> bool {
        match self {
            Condition::SourceIp { ranges, negated } => ranges.iter().any(|r| r.contains(request.source)) != *negated,
            Condition::SecureTransport(secure) => request.secure == *secure,
            Condition::ViaAwsService(via) => !*via,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        principal: Option<(&'a str, &'a str)>,
        action: &'a str,
        resource: &'a str,
        source: &str,
    ) -> PolicyRequest<'a> {
        PolicyRequest { principal, issuer: None, action, resource, source: source.parse().unwrap(), secure: false }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b"));
        assert!(wildcard_match("s3:get*", "s3:getobject"));
        assert!(wildcard_match("a?c", "abc") && !wildcard_match("a?c", "abbc"));
        assert!(!wildcard_match("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(wildcard_match("*", ""));
    }

    /// The statement from S3's documentation on limiting presigned URLs
    /// to a network path, as written there.
    #[test]
    fn deny_outside_a_network_as_documented() {
        let policy = br#"{
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "NetworkRestrictionForS3Bucket",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::photos", "arn:aws:s3:::photos/*"],
                "Condition": {
                    "NotIpAddressIfExists": {"aws:SourceIp": ["192.168.1.0/24", "127.0.0.2"]},
                    "BoolIfExists": {"aws:ViaAWSService": "false"}
                }
            }]
        }"#;
        let policy = Policy::parse(policy, "photos").unwrap();
        let key = Some(("LKKEY", "camera"));
        assert_eq!(
            policy.evaluate(&request(key, "s3:GetObject", "arn:aws:s3:::photos/a.jpg", "192.168.1.50")),
            Verdict::Silent
        );
        assert_eq!(
            policy.evaluate(&request(key, "s3:GetObject", "arn:aws:s3:::photos/a.jpg", "127.0.0.2")),
            Verdict::Silent
        );
        assert_eq!(
            policy.evaluate(&request(key, "s3:GetObject", "arn:aws:s3:::photos/a.jpg", "10.0.0.1")),
            Verdict::Deny
        );
        assert_eq!(policy.evaluate(&request(None, "s3:ListBucket", "arn:aws:s3:::photos", "10.0.0.1")), Verdict::Deny);
    }

    #[test]
    fn deny_wins_over_allow_and_principals_match_keys() {
        let policy = br#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::pub/*"},
            {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::000000000000:user/intruder"]},"Action":"s3:*","Resource":"arn:aws:s3:::pub/*"},
            {"Effect":"Allow","Principal":{"AWS":"LKWRITER"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::pub/in/*",
             "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"},"Bool":{"aws:SecureTransport":"false"}}}
        ]}"#;
        let policy = Policy::parse(policy, "pub").unwrap();
        assert_eq!(policy.evaluate(&request(None, "s3:GetObject", "arn:aws:s3:::pub/x", "1.2.3.4")), Verdict::Allow);
        assert_eq!(policy.evaluate(&request(None, "s3:PutObject", "arn:aws:s3:::pub/x", "1.2.3.4")), Verdict::Silent);
        assert_eq!(
            policy.evaluate(&request(Some(("LKX", "intruder")), "s3:GetObject", "arn:aws:s3:::pub/x", "1.2.3.4")),
            Verdict::Deny
        );
        assert_eq!(
            policy.evaluate(&request(Some(("LKWRITER", "w")), "s3:PutObject", "arn:aws:s3:::pub/in/f", "127.0.0.9")),
            Verdict::Allow
        );
        assert_eq!(
            policy.evaluate(&request(Some(("LKWRITER", "w")), "s3:PutObject", "arn:aws:s3:::pub/in/f", "8.8.8.8")),
            Verdict::Silent
        );
        let secure = PolicyRequest {
            secure: true,
            ..request(Some(("LKWRITER", "w")), "s3:PutObject", "arn:aws:s3:::pub/in/f", "127.0.0.9")
        };
        assert_eq!(policy.evaluate(&secure), Verdict::Silent);
    }

    #[test]
    fn everything_outside_the_subset_is_refused_by_name() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","NotAction":"s3:x"}]}"#,
                "NotAction",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","NotPrincipal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
                "NotPrincipal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/*"}]}"#,
                "NotResource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringLike":{"s3:prefix":"a"}}}]}"#,
                "StringLike",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:Referer":"x"}}}]}"#,
                "aws:Referer",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
                "Service",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
                "Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:Run","Resource":"arn:aws:s3:::b/*"}]}"#,
                "ec2:Run",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
                "other",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}}]}"#,
                "300.1.1.1",
            ),
            (r#"{"Version":"2099-01-01","Statement":[]}"#, "Version"),
            (r#"{"Statement":[]}"#, "Statement"),
            (r#"{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::b/*"}]}"#, "Action"),
            (r#"not json"#, "JSON"),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}],"Extra":1}"#,
                "Extra",
            ),
        ];
        for (document, named) in cases {
            let error = Policy::parse(document.as_bytes(), "b").unwrap_err();
            assert!(error.contains(named), "{document}: {error}");
        }
    }
}
