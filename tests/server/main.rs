//! Integration tests: the real server on 127.0.0.1:0, raw HTTP/1.1.

mod harness;

mod auth;
mod bad_input;
mod bench;
mod buckets;
mod chunked;
mod conditional;
mod cors;
mod crash;
mod discovery;
mod durability;
#[cfg(feature = "failpoints")]
mod failpoints;
mod hostile;
mod https;
mod keys;
mod lan;
mod large_objects;
mod lifecycle;
mod listing;
mod multipart;
mod object_lock;
mod objects;
mod policies;
mod post;
mod presign;
mod share;
mod storage;
mod sts;
mod systemd;
mod upload_page;
mod versioning;
