//! Integration tests against a real LocalStack (S3 + SQS): `scripts/test.sh`
//! starts one. Each test gets its own buckets and queues.

mod analysis;
mod api;
mod architecture;
mod backfill;
mod browser;
mod calls;
mod cli;
mod colour;
mod crash;
mod delivery;
mod drop_in;
mod drop_in_cli;
mod edge;
mod events;
mod formats;
mod harness;
mod hostile;
mod infra;
mod on_delete;
mod orientation;
mod output;
mod presign;
mod reference;
mod routes;
mod seed;
mod setup;
mod setup_guide;
mod setup_merge;
mod submit;
mod telemetry;
mod tools;
mod webhook;
