//! Integration tests against a real LocalStack (S3 + SQS): `scripts/test.sh`
//! starts one. Each test gets its own buckets and queues.

mod api;
mod architecture;
mod backfill;
mod browser;
mod calls;
mod cli;
mod crash;
mod delivery;
mod drop_in;
mod drop_in_cli;
mod edge;
mod harness;
mod hostile;
mod infra;
mod orientation;
mod presign;
mod reference;
mod routes;
mod seed;
mod setup;
mod telemetry;
mod tools;
