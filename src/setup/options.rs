//! `imgflow setup`'s own flags (beside the buckets, queue and CORS origins).

use clap::{Args, ValueEnum};

/// `imgflow setup`'s own flags (beside the buckets, queue and CORS origins).
#[derive(Args, Debug, Clone, Default)]
pub struct Options {
    /// Only keys starting with this start jobs (the notification's prefix rule)
    #[arg(long, env = "IMGFLOW_NOTIFY_PREFIX")]
    pub prefix: Option<String>,

    /// Only keys ending with this start jobs (the notification's suffix rule)
    #[arg(long, env = "IMGFLOW_NOTIFY_SUFFIX")]
    pub suffix: Option<String>,

    /// `remove`: deleting a source also removes its renditions and manifest
    #[arg(long, value_enum, value_name = "ACTION", env = "IMGFLOW_ON_DELETE")]
    pub on_delete: Option<OnDelete>,

    /// Send a "job finished" event (S3's event for the manifest) to this SQS queue, created if missing
    #[arg(long, value_name = "NAME", env = "IMGFLOW_EVENTS_QUEUE")]
    pub events_queue: Option<String>,

    /// Send a "job finished" event to this SNS topic, created if missing
    #[arg(long, value_name = "NAME", env = "IMGFLOW_EVENTS_TOPIC")]
    pub events_topic: Option<String>,

    /// Print what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// Leave renditions and manifest in the outbox (the default)
    Keep,
    /// Subscribe to s3:ObjectRemoved:* and remove the deleted source's outputs
    Remove,
}
