//! imgflow's browser CORS rules, merged into the buckets' CORS
//! configuration by rule ID: other rules are kept.

use anyhow::Context;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use super::plan::Section;
use crate::aws::Clients;
use crate::config::Resources;

/// Our CORS rules' ids: a rerun replaces these and keeps everyone else's.
pub const CORS_UPLOAD_ID: &str = "imgflow-browser-upload";
pub const CORS_DOWNLOAD_ID: &str = "imgflow-browser-download";

/// Request headers a presigned PUT from `POST /v1/uploads` carries, listed
/// one by one: LocalStack 4.13 does not match wildcards such as
/// `x-amz-meta-*` (real S3 does), and explicit names work on both.
pub const UPLOAD_HEADERS: &[&str] = &[
    "content-type",
    "if-none-match",
    "x-amz-meta-job-id",
    "x-amz-meta-recipe",
    "x-amz-meta-preset",
    "x-amz-meta-traceparent",
];

/// Let pages from `origins` PUT presigned uploads into the inbox and GET /
/// HEAD outputs from the outbox. Merges: other rules on the buckets are kept,
/// and only imgflow's own (by id) are replaced. Without origins the buckets'
/// CORS rules are left as they are.
pub async fn cors(clients: &Clients, res: &Resources, origins: &[String]) -> anyhow::Result<()> {
    for (bucket, ours) in ours(res, origins)? {
        let merged = merge(read(clients, &bucket).await?, ours);
        write(clients, &bucket, merged).await?;
    }
    Ok(())
}

/// Each bucket and imgflow's rule for it (none without origins).
pub fn ours(res: &Resources, origins: &[String]) -> anyhow::Result<Vec<(String, CorsRule)>> {
    if origins.is_empty() {
        return Ok(vec![]);
    }
    let rule = |id: &str, methods: &[&str], headers: &[&str]| {
        CorsRule::builder()
            .id(id)
            .set_allowed_origins(Some(origins.to_vec()))
            .set_allowed_methods(Some(methods.iter().map(|m| m.to_string()).collect()))
            .set_allowed_headers(Some(headers.iter().map(|h| h.to_string()).collect()))
            .expose_headers("etag")
            .max_age_seconds(3600)
            .build()
            .context("building a CORS rule")
    };
    Ok(vec![
        (
            res.inbox.clone(),
            rule(CORS_UPLOAD_ID, &["PUT"], UPLOAD_HEADERS)?,
        ),
        (
            res.outbox.clone(),
            rule(CORS_DOWNLOAD_ID, &["GET", "HEAD"], &["range"])?,
        ),
    ])
}

/// The bucket's CORS rules; none when it has none (or does not exist yet).
pub async fn read(clients: &Clients, bucket: &str) -> anyhow::Result<Vec<CorsRule>> {
    match clients.s3.get_bucket_cors().bucket(bucket).send().await {
        Ok(out) => Ok(out.cors_rules.unwrap_or_default()),
        // S3 answers NoSuchCORSConfiguration, which the SDK does not model.
        Err(err)
            if err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 404) =>
        {
            Ok(vec![])
        }
        Err(err) => Err(err.into_service_error())
            .with_context(|| format!("reading the CORS rules of bucket {bucket}")),
    }
}

/// `rules` with `ours` in place of the rule with its ID.
pub fn merge(mut rules: Vec<CorsRule>, ours: CorsRule) -> Vec<CorsRule> {
    rules.retain(|r| r.id() != ours.id());
    rules.push(ours);
    rules
}

/// The plan's section for one bucket's rules.
pub fn section(bucket: &str, before: &[CorsRule], after: &[CorsRule]) -> Section {
    let keyed = |rules: &[CorsRule]| -> Vec<(String, String)> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = r
                    .id()
                    .map_or_else(|| format!("(rule {})", i + 1), str::to_owned);
                let text = format!(
                    "{} from {} (headers {})",
                    r.allowed_methods().join(","),
                    r.allowed_origins().join(" "),
                    r.allowed_headers().join(",")
                );
                (id, text)
            })
            .collect()
    };
    Section::diff(
        format!("CORS rules of s3://{bucket}"),
        &keyed(before),
        &keyed(after),
    )
}

pub async fn write(clients: &Clients, bucket: &str, rules: Vec<CorsRule>) -> anyhow::Result<()> {
    let config = CorsConfiguration::builder()
        .set_cors_rules(Some(rules))
        .build()
        .context("building the CORS configuration")?;
    clients
        .s3
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(config)
        .send()
        .await
        .with_context(|| format!("setting the CORS rules of bucket {bucket}"))?;
    Ok(())
}
