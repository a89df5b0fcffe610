//! larder: a small S3-compatible object store for single-board computers.
//!
//! The request path (see ARCHITECTURE.md): [`server`] accepts connections,
//! [`edge`] hands each request to larder's own endpoints ([`web`]) or to
//! [`s3`], which routes and answers S3 operations, authenticating with
//! [`sigv4`] against keys from [`iam`], and keeps objects in [`store`].

pub mod allocator;
pub mod checksum;
pub mod clock;
pub mod config;
pub mod edge;
#[doc(hidden)]
pub mod fuzzing;
pub mod iam;
pub mod metrics;
pub mod presign;
pub mod repair;
pub mod s3;
pub mod server;
pub mod sigv4;
pub mod store;
pub mod systemd;
pub mod timefmt;
pub mod web;
