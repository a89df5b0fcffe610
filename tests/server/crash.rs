//! Crash consistency: PUTs and DELETEs from several clients while the
//! server is killed with SIGKILL at random moments, then restarted. Every
//! acknowledged write must be there with the right bytes, nothing
//! unacknowledged may be half visible, and tmp/ must be empty.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::storage::{count_blobs, unsafe_kill};

const KEYS: usize = 12;
const CLIENTS: usize = 4;
const ROUNDS: usize = 6;

/// What a key may hold: `None` is absent, `Some(v)` the bytes of version v.
type State = Option<u32>;

fn body_of(key: usize, version: u32) -> Vec<u8> {
    let len = (version as usize * 7919 + key * 131) % 150_000;
    pattern(len, (version as u8) ^ (key as u8))
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::getrandom(&mut bytes).unwrap();
    u32::from_le_bytes(bytes)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = unique_dir("crash");
    // Allowed states per key: one once acknowledged, more while in doubt.
    let allowed: Arc<Mutex<HashMap<usize, HashSet<State>>>> =
        Arc::new(Mutex::new((0..KEYS).map(|k| (k, HashSet::from([None]))).collect()));
    let next_version = Arc::new(Mutex::new(1u32));
    let mut acknowledged_ops = 0usize;

    for round in 0..ROUNDS {
        let (mut child, addr) = spawn_server(&dir);
        let client = client_of(addr);
        if round == 0 {
            create_bucket(&client, "crash");
        }
        verify(&client, &allowed);
        // The check above pinned each key to what it now holds.
        let stop_at = Instant::now() + Duration::from_millis(150 + u64::from(random_u32() % 600));
        let workers: Vec<_> = (0..CLIENTS)
            .map(|worker| {
                let (client, allowed, next_version) = (client.clone(), allowed.clone(), next_version.clone());
                std::thread::spawn(move || {
                    let mut acked = 0;
                    loop {
                        let key = (random_u32() as usize % (KEYS / CLIENTS)) * CLIENTS + worker;
                        let (request, outcome) = if random_u32() % 4 == 0 {
                            (Request::new("DELETE", "crash", &format!("key{key}")), None)
                        } else {
                            let version = {
                                let mut next = next_version.lock().unwrap();
                                *next += 1;
                                *next
                            };
                            (
                                Request::new("PUT", "crash", &format!("key{key}")).body(body_of(key, version)),
                                Some(version),
                            )
                        };
                        // In doubt until acknowledged.
                        allowed.lock().unwrap().get_mut(&key).unwrap().insert(outcome);
                        let multipart = outcome.is_some() && random_u32() % 3 == 0;
                        let sent = std::panic::catch_unwind(|| {
                            if multipart {
                                send_as_multipart(&client, &request)
                            } else {
                                client.send(&request)
                            }
                        });
                        match sent {
                            Ok(response) if response.status == 200 || response.status == 204 => {
                                allowed.lock().unwrap().insert(key, HashSet::from([outcome]));
                                acked += 1;
                            }
                            // The server died mid-request: the key stays in doubt.
                            _ => return acked,
                        }
                    }
                })
            })
            .collect();
        while Instant::now() < stop_at {
            std::thread::sleep(Duration::from_millis(10));
        }
        unsafe_kill(child.id(), libc::SIGKILL);
        child.wait().unwrap();
        for worker in workers {
            acknowledged_ops += worker.join().unwrap();
        }
    }
    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    wait_for_recovery(&client);
    let present = verify(&client, &allowed);
    assert!(std::fs::read_dir(dir.join("tmp")).unwrap().next().is_none(), "tmp/ must be empty after restart");
    assert_eq!(
        count_blobs(&dir),
        expected_blobs(&client, present),
        "every blob belongs to exactly one object or upload"
    );
    assert!(acknowledged_ops > 20, "the test must actually write: {acknowledged_ops}");
    unsafe_kill(child.id(), libc::SIGTERM);
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Blobs the bucket should hold: one per single-PUT object, a manifest and
/// its part per (one-part) multipart object, and the parts of uploads a
/// crash left in progress.
fn expected_blobs(client: &Client, present: usize) -> usize {
    let listing = client.send(&Request::new("GET", "crash", "").query("list-type", "2"));
    let etags = listing.xml_all("ETag");
    assert_eq!(etags.len(), present);
    let objects: usize = etags.iter().map(|etag| if etag.contains('-') { 2 } else { 1 }).sum();
    let uploads = client.send(&Request::new("GET", "crash", "").query("uploads", ""));
    let parts: usize = uploads
        .xml_all("Key")
        .iter()
        .zip(uploads.xml_all("UploadId"))
        .map(|(key, id)| {
            client.send(&Request::new("GET", "crash", key).query("uploadId", &id)).xml_all("PartNumber").len()
        })
        .sum();
    objects + parts
}

/// Uploads a PUT's body as a one-part multipart upload instead.
fn send_as_multipart(client: &Client, put: &Request) -> Response {
    let created = client.send(&Request::new("POST", &put.bucket, &put.key).query("uploads", ""));
    let Some(id) = created.xml("UploadId") else { return created };
    let part = client.send(
        &Request::new("PUT", &put.bucket, &put.key)
            .query("partNumber", "1")
            .query("uploadId", &id)
            .body(put.body.clone()),
    );
    let Some(etag) = part.header("etag").map(str::to_string) else { return part };
    let document = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    client.send(&Request::new("POST", &put.bucket, &put.key).query("uploadId", &id).body(document))
}

/// Checks every key against its allowed states, then pins it to what it
/// holds; returns how many keys hold an object.
fn verify(client: &Client, allowed: &Mutex<HashMap<usize, HashSet<State>>>) -> usize {
    let mut allowed = allowed.lock().unwrap();
    let mut present = 0;
    for key in 0..KEYS {
        let response = get(client, "crash", &format!("key{key}"));
        let states = allowed.get(&key).unwrap();
        let actual = match response.status {
            404 => None,
            200 => {
                let version = states
                    .iter()
                    .flatten()
                    .find(|version| response.body == body_of(key, **version))
                    .unwrap_or_else(|| panic!("key{key} holds bytes of no allowed version (allowed {states:?})"));
                present += 1;
                Some(*version)
            }
            status => panic!("key{key}: unexpected status {status}: {}", response.text()),
        };
        assert!(states.contains(&actual), "key{key} is {actual:?}, allowed {states:?}");
        allowed.insert(key, HashSet::from([actual]));
    }
    present
}
