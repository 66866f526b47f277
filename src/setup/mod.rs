//! `imgflow setup`: create, idempotently, everything the flow needs, and
//! merge imgflow's settings into what the buckets and queues already have.
//!
//! inbox bucket ──ObjectCreated (+ ObjectRemoved)──▶ queue ──after N receives──▶ DLQ
//!                                   ▲ policy: only the inbox may send
//! outbox bucket ──…/manifest.json created──▶ "job finished" queue and/or topic (opt-in)
//!
//! Merge, never replace: imgflow's notification entries (fixed Ids), its
//! policy statements (fixed Sids) and CORS rules (fixed IDs) are added or
//! updated, everything else is kept. A configuration S3 would refuse
//! (overlapping filters for one event type) stops setup before it changes
//! anything. Everything is read first (`state`), the wanted state computed
//! ([`Desired`]), shown as a [`Plan`], and only then written (`apply`).

mod apply;
mod cors;
mod notify;
mod options;
mod plan;
mod policy;
mod state;

use anyhow::{Context, bail};
use aws_sdk_s3::types::{CorsRule, NotificationConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

pub use apply::queue_arn;
pub use cors::{CORS_DOWNLOAD_ID, CORS_UPLOAD_ID, UPLOAD_HEADERS, cors};
pub use notify::{Conflict, FINISHED_QUEUE_ID, FINISHED_TOPIC_ID, INBOX_ID};
pub use options::{OnDelete, Options};
pub use plan::{Mark, Plan, Section};
pub use policy::{FINISHED_SID, INBOX_SID};
pub use show::routes_note;

use crate::aws::Clients;
use crate::config::{QueueConfig, Resources};
use crate::outbox::MANIFEST_SUFFIX;
use notify::{OBJECT_CREATED, OBJECT_REMOVED, Ours, Target};
use state::{QueueState, TopicState};

#[derive(Debug, Clone)]
pub struct SetupReport {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
}

/// What [`run`] did: the plan it followed, and (unless a dry run) the queues.
pub struct Ran {
    pub plan: Plan,
    pub report: Option<SetupReport>,
}

/// Everything setup writes, computed from what it read.
pub struct Desired {
    queue: QueueState,
    queue_attributes: Vec<(QueueAttributeName, String)>,
    dlq: QueueState,
    dlq_attributes: Vec<(QueueAttributeName, String)>,
    /// The events queue and its merged policy.
    events_queue: Option<(QueueState, Value)>,
    /// The topic's ARN and merged policy.
    topic: Option<(String, Value)>,
    /// The queue ARN to subscribe to the topic (queue and topic both asked for).
    subscribe: Option<String>,
    inbox_notifications: NotificationConfiguration,
    /// `None`: imgflow has nothing in the outbox's configuration, before or after.
    outbox_notifications: Option<NotificationConfiguration>,
    /// Which of the two differ from what the buckets have (only those are written).
    notifications_changed: (bool, bool),
    cors: Vec<(String, Vec<CorsRule>)>,
}

/// `imgflow setup` with no options and no CORS origins (tests, the harness).
pub async fn setup(
    clients: &Clients,
    res: &Resources,
    queue: &QueueConfig,
) -> anyhow::Result<SetupReport> {
    run(clients, res, queue, &[], &Options::default())
        .await?
        .report
        .context("setup was a dry run")
}

/// The command: plan, print the plan, apply it unless `--dry-run`.
pub async fn command(
    clients: &Clients,
    res: &Resources,
    queue: &QueueConfig,
    origins: &[String],
    options: &Options,
) -> anyhow::Result<()> {
    let ran = run(clients, res, queue, origins, options).await?;
    print!("{}", ran.plan);
    match ran.report {
        None => println!("dry run: nothing was changed"),
        Some(report) => println!(
            "ready: inbox s3://{} → queue {} (DLQ {}) → outbox s3://{}",
            res.inbox, report.queue_url, report.dlq_url, res.outbox
        ),
    }
    Ok(())
}

pub async fn run(
    clients: &Clients,
    res: &Resources,
    queue: &QueueConfig,
    origins: &[String],
    options: &Options,
) -> anyhow::Result<Ran> {
    check(res, options)?;
    // Read and merge first: a conflict stops setup before it changes anything.
    let current = Current::read(clients, res, origins, options).await?;
    let plan = current
        .desire(res, queue, options)?
        .plan(&current, res, options);
    if options.dry_run {
        return Ok(Ran { plan, report: None });
    }

    let region = clients.s3.config().region().map(|r| r.to_string());
    for bucket in [&res.inbox, &res.outbox] {
        apply::create_bucket(clients, bucket, region.as_deref()).await?;
    }
    apply::ensure_queue(clients, &res.dlq()).await?;
    apply::ensure_queue(clients, &res.queue).await?;
    if let Some(name) = &options.events_queue {
        apply::ensure_queue(clients, name).await?;
    }
    if let Some(name) = &options.events_topic {
        apply::ensure_topic(clients, name).await?;
    }
    // Again, now with every ARN known.
    let current = Current::read(clients, res, origins, options).await?;
    let desired = current.desire(res, queue, options)?;
    apply::write(clients, res, &desired).await?;
    if !queue.webhooks.is_empty() {
        crate::webhook::ensure_queue(clients, res).await?;
    }
    let report = SetupReport {
        queue_url: desired.queue.url.clone(),
        queue_arn: desired.queue.arn.clone(),
        dlq_url: desired.dlq.url.clone(),
    };
    Ok(Ran {
        plan,
        report: Some(report),
    })
}

fn check(res: &Resources, options: &Options) -> anyhow::Result<()> {
    if res.inbox == res.outbox {
        bail!(
            "the inbox and the outbox are both {:?}: outputs would trigger new jobs forever; use two buckets",
            res.inbox
        );
    }
    if let Some(events) = &options.events_queue
        && (*events == res.queue || *events == res.dlq())
    {
        bail!("--events-queue {events:?} is imgflow's job queue or DLQ: use a queue of its own");
    }
    for (flag, value) in [("--prefix", &options.prefix), ("--suffix", &options.suffix)] {
        if value.as_ref().is_some_and(|v| v.len() > 1024) {
            bail!("{flag} is longer than S3's 1024 characters");
        }
    }
    Ok(())
}

/// What is there now (see [`state`]).
struct Current {
    inbox_exists: bool,
    outbox_exists: bool,
    inbox_notifications: NotificationConfiguration,
    outbox_notifications: NotificationConfiguration,
    queue: Option<QueueState>,
    dlq: Option<QueueState>,
    events_queue: Option<QueueState>,
    topic: Option<TopicState>,
    /// Each bucket, its rules now, and imgflow's rule for it.
    cors: Vec<(String, Vec<CorsRule>, CorsRule)>,
}

/// A queue that does not exist yet, for a plan.
fn planned_queue(name: &str) -> QueueState {
    QueueState {
        url: format!("(new queue {name})"),
        arn: format!("(new queue {name})"),
        attributes: Default::default(),
    }
}

fn nonempty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

impl Current {
    async fn read(
        clients: &Clients,
        res: &Resources,
        origins: &[String],
        options: &Options,
    ) -> anyhow::Result<Current> {
        let inbox_exists = state::bucket_exists(clients, &res.inbox).await?;
        let outbox_exists = state::bucket_exists(clients, &res.outbox).await?;
        let mut cors = vec![];
        for (bucket, ours) in cors::ours(res, origins)? {
            let exists = if bucket == res.inbox {
                inbox_exists
            } else {
                outbox_exists
            };
            let before = if exists {
                cors::read(clients, &bucket).await?
            } else {
                vec![]
            };
            cors.push((bucket, before, ours));
        }
        let events_queue = match &options.events_queue {
            Some(name) => state::queue(clients, name).await?,
            None => None,
        };
        let topic = match &options.events_topic {
            Some(name) => state::topic(clients, name).await?,
            None => None,
        };
        Ok(Current {
            inbox_exists,
            outbox_exists,
            inbox_notifications: state::notifications(clients, &res.inbox, inbox_exists).await?,
            outbox_notifications: state::notifications(clients, &res.outbox, outbox_exists).await?,
            queue: state::queue(clients, &res.queue).await?,
            dlq: state::queue(clients, &res.dlq()).await?,
            events_queue,
            topic,
            cors,
        })
    }

    fn desire(
        &self,
        res: &Resources,
        queue_config: &QueueConfig,
        options: &Options,
    ) -> anyhow::Result<Desired> {
        let queue = self
            .queue
            .clone()
            .unwrap_or_else(|| planned_queue(&res.queue));
        let dlq = self
            .dlq
            .clone()
            .unwrap_or_else(|| planned_queue(&res.dlq()));
        let inbox_arn = format!("arn:aws:s3:::{}", res.inbox);
        let outbox_arn = format!("arn:aws:s3:::{}", res.outbox);

        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": queue_config.max_receive_count.to_string(),
        });
        let send = policy::allow(
            INBOX_SID,
            "s3.amazonaws.com",
            "sqs:SendMessage",
            &queue.arn,
            &inbox_arn,
        );
        let current_policy = queue.attributes.get(&QueueAttributeName::Policy);
        let queue_policy = policy::merge(current_policy.map(String::as_str), send)
            .with_context(|| format!("merging the policy of queue {}", res.queue))?;
        let queue_attributes = vec![
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (QueueAttributeName::Policy, queue_policy.to_string()),
            (
                QueueAttributeName::VisibilityTimeout,
                queue_config.visibility_timeout_secs.to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "20".to_owned(),
            ),
        ];
        // The longest SQS allows (14 days, as infra/imgflow.yaml): time for a
        // person to look at what failed before it expires.
        let dlq_attributes = vec![(
            QueueAttributeName::MessageRetentionPeriod,
            "1209600".to_owned(),
        )];

        let mut events = vec![OBJECT_CREATED];
        if options.on_delete == Some(OnDelete::Remove) {
            events.push(OBJECT_REMOVED);
        }
        let inbox_entry = Ours {
            id: INBOX_ID,
            target: Target::Queue(queue.arn.clone()),
            events,
            prefix: nonempty(&options.prefix),
            suffix: nonempty(&options.suffix),
        };
        let inbox_notifications = notify::merge(&self.inbox_notifications, &[inbox_entry])
            .with_context(|| format!("bucket s3://{}", res.inbox))?;

        // "Job finished": S3's own event for each manifest, to a topic (which
        // fans out to the queue when both are asked for) or to the queue.
        let events_queue = options.events_queue.as_ref().map(|name| {
            self.events_queue
                .clone()
                .unwrap_or_else(|| planned_queue(name))
        });
        let topic_arn = options.events_topic.as_ref().map(|name| {
            self.topic
                .as_ref()
                .map_or_else(|| format!("(new topic {name})"), |t| t.arn.clone())
        });
        let finished = |id, target| Ours {
            id,
            target,
            events: vec![OBJECT_CREATED],
            prefix: None,
            suffix: Some(MANIFEST_SUFFIX.to_owned()),
        };
        let outbox_entries: Vec<Ours> = match (&topic_arn, &events_queue) {
            (Some(topic), _) => vec![finished(FINISHED_TOPIC_ID, Target::Topic(topic.clone()))],
            (None, Some(q)) => vec![finished(FINISHED_QUEUE_ID, Target::Queue(q.arn.clone()))],
            (None, None) => vec![],
        };
        let had_ours = notify::views(&self.outbox_notifications).iter().any(|v| {
            v.id.as_deref()
                .is_some_and(|id| notify::OUR_IDS.contains(&id))
        });
        let outbox_notifications = if outbox_entries.is_empty() && !had_ours {
            None
        } else {
            Some(
                notify::merge(&self.outbox_notifications, &outbox_entries)
                    .with_context(|| format!("bucket s3://{}", res.outbox))?,
            )
        };

        let events_queue = match events_queue {
            Some(q) => {
                let (principal, source) = match &topic_arn {
                    Some(topic) => ("sns.amazonaws.com", topic.clone()),
                    None => ("s3.amazonaws.com", outbox_arn.clone()),
                };
                let ours =
                    policy::allow(FINISHED_SID, principal, "sqs:SendMessage", &q.arn, &source);
                let current = q.attributes.get(&QueueAttributeName::Policy);
                let merged = policy::merge(current.map(String::as_str), ours)
                    .context("merging the policy of the events queue")?;
                Some((q, merged))
            }
            None => None,
        };
        let topic = match &topic_arn {
            Some(arn) => {
                let ours = policy::allow(
                    FINISHED_SID,
                    "s3.amazonaws.com",
                    "SNS:Publish",
                    arn,
                    &outbox_arn,
                );
                let current = self.topic.as_ref().and_then(|t| t.policy.as_deref());
                let merged =
                    policy::merge(current, ours).context("merging the policy of the topic")?;
                Some((arn.clone(), merged))
            }
            None => None,
        };
        let subscribe = match (&topic, &events_queue) {
            (Some(_), Some((q, _))) => Some(q.arn.clone()),
            _ => None,
        };
        let cors = self
            .cors
            .iter()
            .map(|(bucket, before, ours)| {
                (bucket.clone(), cors::merge(before.clone(), ours.clone()))
            })
            .collect();
        Ok(Desired {
            queue,
            queue_attributes,
            dlq,
            dlq_attributes,
            events_queue,
            topic,
            subscribe,
            notifications_changed: (
                !notify::same(&self.inbox_notifications, &inbox_notifications),
                outbox_notifications
                    .as_ref()
                    .is_some_and(|after| !notify::same(&self.outbox_notifications, after)),
            ),
            inbox_notifications,
            outbox_notifications,
            cors,
        })
    }
}

mod show;
