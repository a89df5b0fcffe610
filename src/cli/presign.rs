//! `larder presign`: a presigned URL, made offline.

use std::path::PathBuf;

use larder::iam::Credentials;

use super::{root_credentials, ServerArgs};

/// The key that signs presigned URLs: LARDER_ACCESS_KEY/LARDER_SECRET_KEY,
/// else the root key.
pub fn signing_credentials(server: &super::Target, profile: Option<&str>) -> Result<Credentials, String> {
    if let Some(profile) = profile {
        let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".aws").join("credentials")
        });
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        return larder::presign::profile_credentials(&text, profile)
            .ok_or_else(|| format!("no key for profile {profile} in {}", path.display()));
    }
    let access_key = std::env::var("LARDER_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let secret_key = std::env::var("LARDER_SECRET_KEY").ok().filter(|v| !v.is_empty());
    match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Ok(Credentials { access_key, secret_key }),
        _ => root_credentials(server),
    }
}

pub fn presign_command(
    method: &str,
    target: &str,
    expires: &str,
    content_type: Option<&str>,
    content_length: Option<u64>,
    profile: Option<&str>,
    server: &ServerArgs,
) -> Result<(), String> {
    let server = &server.resolve()?;
    let (bucket, key) = larder::presign::parse_target(target)?;
    let request = larder::presign::PresignRequest {
        method,
        endpoint: &server.endpoint,
        bucket,
        key,
        region: &server.region,
        expires_secs: larder::timefmt::parse_duration(expires)?,
        content_type,
        content_length,
    };
    let url = larder::presign::presign(&request, &signing_credentials(server, profile)?, larder::timefmt::now())?;
    println!("{url}");
    Ok(())
}
