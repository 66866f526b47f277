//! imgflow: an event-driven image pipeline on S3 and SQS.
//!
//! The data moves left to right, and the modules follow it:
//!
//! ```text
//! client ─POST /v1/uploads─▶ api::uploads ─presigned PUT─▶ client
//! client ─PUT─▶ S3 inbox (inbox: keys, metadata) ─ObjectCreated─▶ SQS
//! worker ─long-poll─▶ event (S3 notification → objects)
//!        ─▶ recipe (metadata → typed recipe) ─▶ pipeline (pure: decode, ops, encode)
//!        ─▶ outbox (renditions, then manifest.json) ─▶ delete the message
//! client ─GET /v1/jobs/{id}─▶ api::jobs ─reads─▶ outbox manifest
//! ```
//!
//! Dependencies point one way, down this list (a test checks it):
//!
//! - [`app`] wires the two long-running halves, [`api`] and [`worker`],
//!   which never import each other or `app`.
//! - [`store`] is every S3 object call on the inbox and outbox; [`aws`] is
//!   the only place SDK clients are built; [`setup`] creates the buckets,
//!   queues and notification; [`client`] is `imgflow submit`; [`dlq`] is
//!   `imgflow dlq`; [`backfill`] is `imgflow backfill`; [`process`] is `imgflow process`; [`telemetry`] is logs,
//!   traces and metrics; [`sandbox`] runs the pipeline on untrusted bytes
//!   in confined child processes.
//! - [`config`] is every setting and its default; it imports only the pure
//!   modules.
//! - [`recipe`], [`pipeline`], [`event`], [`inbox`] and [`outbox`] are pure:
//!   no tokio, no AWS, no axum.
//! - `main.rs` is glue: parse the CLI, load the configuration, dispatch.

pub mod api;
pub mod app;
pub mod aws;
pub mod backfill;
pub mod client;
pub mod config;
pub mod dlq;
pub mod event;
pub mod inbox;
pub mod outbox;
pub mod pipeline;
pub mod process;
pub mod recipe;
pub mod sandbox;
pub mod setup;
pub mod store;
pub mod telemetry;
pub mod worker;
