//! A bucket's notification configuration, merged: imgflow's entries (by
//! their fixed Ids) are added or replaced, every other queue, topic, Lambda
//! and EventBridge setting is kept as it is. Pure: no I/O.
//!
//! S3 refuses a configuration in which two entries share an event type and
//! their key filters overlap (one prefix starts the other and one suffix
//! ends the other; a missing rule is the empty string, which overlaps
//! everything). [`merge`] finds that before S3 does, and names the entry.

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter, TopicConfiguration,
};

/// The inbox's entry: new objects (and, with `--on-delete remove`, removed
/// ones) to the job queue.
pub const INBOX_ID: &str = "imgflow-inbox-object-created";
/// The outbox's "job finished" entry when it goes to an SQS queue.
pub const FINISHED_QUEUE_ID: &str = "imgflow-job-finished-queue";
/// The outbox's "job finished" entry when it goes to an SNS topic.
pub const FINISHED_TOPIC_ID: &str = "imgflow-job-finished-topic";
/// Every Id imgflow writes: a rerun replaces (or drops) exactly these.
pub const OUR_IDS: &[&str] = &[INBOX_ID, FINISHED_QUEUE_ID, FINISHED_TOPIC_ID];

pub const OBJECT_CREATED: &str = "s3:ObjectCreated:*";
pub const OBJECT_REMOVED: &str = "s3:ObjectRemoved:*";

/// Where an entry sends its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Topic(String),
}

/// One of imgflow's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    pub id: &'static str,
    pub target: Target,
    pub events: Vec<&'static str>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// Someone else's entry whose filter overlaps one of ours on an event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the bucket's notification entry {id:?} ({target}) already receives {event} for {filter}, \
     and imgflow's entry {ours:?} would receive it for {our_filter}: S3 refuses overlapping \
     prefix/suffix rules for one event type. Nothing was changed. Give imgflow a --prefix or \
     --suffix that does not overlap that entry's, or narrow that entry."
)]
pub struct Conflict {
    /// The other entry's Id (`(no Id)` when it has none).
    pub id: String,
    /// `queue arn:...`, `topic arn:...` or `lambda arn:...`.
    pub target: String,
    pub event: String,
    pub filter: String,
    pub ours: &'static str,
    pub our_filter: String,
}

/// Any entry, whatever its destination kind, as the overlap rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub id: Option<String>,
    /// `queue arn:...`, `topic arn:...` or `lambda arn:...`.
    pub target: String,
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl View {
    /// One line for a plan: `queue arn:… ← s3:ObjectCreated:* (prefix "a/")`.
    pub fn describe(&self) -> String {
        format!(
            "{} ← {} {}",
            self.target,
            self.events.join(", "),
            filter_text(&self.prefix, &self.suffix)
        )
    }
}

fn filter_text(prefix: &str, suffix: &str) -> String {
    match (prefix, suffix) {
        ("", "") => "(every key)".to_owned(),
        (p, "") => format!("(prefix {p:?})"),
        ("", s) => format!("(suffix {s:?})"),
        (p, s) => format!("(prefix {p:?}, suffix {s:?})"),
    }
}

/// Every queue, topic and Lambda entry of `config`, in that order.
pub fn views(config: &NotificationConfiguration) -> Vec<View> {
    let events = |e: &[Event]| e.iter().map(|e| e.as_str().to_owned()).collect();
    let mut out = Vec::new();
    for q in config.queue_configurations() {
        let (prefix, suffix) = rules(q.filter());
        out.push(View {
            id: q.id().map(str::to_owned),
            target: format!("queue {}", q.queue_arn()),
            events: events(q.events()),
            prefix,
            suffix,
        });
    }
    for t in config.topic_configurations() {
        let (prefix, suffix) = rules(t.filter());
        out.push(View {
            id: t.id().map(str::to_owned),
            target: format!("topic {}", t.topic_arn()),
            events: events(t.events()),
            prefix,
            suffix,
        });
    }
    for l in config.lambda_function_configurations() {
        let (prefix, suffix) = rules(l.filter());
        out.push(View {
            id: l.id().map(str::to_owned),
            target: format!("lambda {}", l.lambda_function_arn()),
            events: events(l.events()),
            prefix,
            suffix,
        });
    }
    out
}

/// The prefix and suffix rules of a filter ("" when absent).
fn rules(filter: Option<&NotificationConfigurationFilter>) -> (String, String) {
    let (mut prefix, mut suffix) = (String::new(), String::new());
    let rules = filter.and_then(|f| f.key()).map(|k| k.filter_rules());
    for rule in rules.unwrap_or_default() {
        let name = rule.name().map(|n| n.as_str().to_ascii_lowercase());
        let value = rule.value().unwrap_or_default().to_owned();
        match name.as_deref() {
            Some("prefix") => prefix = value,
            Some("suffix") => suffix = value,
            _ => {}
        }
    }
    (prefix, suffix)
}

impl Ours {
    fn view(&self) -> View {
        let target = match &self.target {
            Target::Queue(arn) => format!("queue {arn}"),
            Target::Topic(arn) => format!("topic {arn}"),
        };
        View {
            id: Some(self.id.to_owned()),
            target,
            events: self.events.iter().map(|e| (*e).to_owned()).collect(),
            prefix: self.prefix.clone().unwrap_or_default(),
            suffix: self.suffix.clone().unwrap_or_default(),
        }
    }

    fn filter(&self) -> Option<NotificationConfigurationFilter> {
        let mut rules = Vec::new();
        let mut rule = |name: FilterRuleName, value: &Option<String>| {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                rules.push(FilterRule::builder().name(name).value(value).build());
            }
        };
        rule(FilterRuleName::Prefix, &self.prefix);
        rule(FilterRuleName::Suffix, &self.suffix);
        (!rules.is_empty()).then(|| {
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                .build()
        })
    }
}

/// Do two configurations say the same (entries in order, EventBridge on or
/// off)? Writing one again would only send S3's test event to every
/// destination, everyone else's included.
pub fn same(a: &NotificationConfiguration, b: &NotificationConfiguration) -> bool {
    views(a) == views(b)
        && a.event_bridge_configuration().is_some() == b.event_bridge_configuration().is_some()
}

/// Does an event type (possibly ending in `*`) cover part of another's?
pub fn events_overlap(a: &str, b: &str) -> bool {
    let covers = |wild: &str, e: &str| wild.strip_suffix('*').is_some_and(|p| e.starts_with(p));
    a == b || covers(a, b) || covers(b, a)
}

/// S3's rule: two filters overlap when one prefix starts the other and one
/// suffix ends the other.
pub fn filters_overlap(a: &View, b: &View) -> bool {
    let prefixes = a.prefix.starts_with(&b.prefix) || b.prefix.starts_with(&a.prefix);
    let suffixes = a.suffix.ends_with(&b.suffix) || b.suffix.ends_with(&a.suffix);
    prefixes && suffixes
}

/// The first event type both entries receive for overlapping keys.
fn overlap(a: &View, b: &View) -> Option<String> {
    if !filters_overlap(a, b) {
        return None;
    }
    a.events
        .iter()
        .find(|ea| b.events.iter().any(|eb| events_overlap(ea, eb)))
        .cloned()
}

/// `current` with every entry whose Id is one of [`OUR_IDS`] dropped and
/// `ours` added; everything else (other entries, EventBridge) untouched.
/// Refuses, naming the entry, when one of ours overlaps another's.
pub fn merge(
    current: &NotificationConfiguration,
    ours: &[Ours],
) -> Result<NotificationConfiguration, Box<Conflict>> {
    let is_ours = |id: Option<&str>| id.is_some_and(|id| OUR_IDS.contains(&id));
    // Each of ours against everyone else's and against ours before it.
    let mut seen: Vec<View> = views(current)
        .into_iter()
        .filter(|v| !is_ours(v.id.as_deref()))
        .collect();
    for mine in ours {
        let view = mine.view();
        if let Some((other, event)) = seen
            .iter()
            .find_map(|other| overlap(&view, other).map(|event| (other, event)))
        {
            return Err(Box::new(Conflict {
                id: other.id.clone().unwrap_or_else(|| "(no Id)".to_owned()),
                target: other.target.clone(),
                event,
                filter: filter_text(&other.prefix, &other.suffix),
                ours: mine.id,
                our_filter: filter_text(&view.prefix, &view.suffix),
            }));
        }
        seen.push(view);
    }

    let mut queues: Vec<QueueConfiguration> = current
        .queue_configurations()
        .iter()
        .filter(|q| !is_ours(q.id()))
        .cloned()
        .collect();
    let mut topics: Vec<TopicConfiguration> = current
        .topic_configurations()
        .iter()
        .filter(|t| !is_ours(t.id()))
        .cloned()
        .collect();
    for mine in ours {
        let events = mine.events.iter().map(|e| Event::from(*e)).collect();
        match &mine.target {
            Target::Queue(arn) => queues.push(
                QueueConfiguration::builder()
                    .id(mine.id)
                    .queue_arn(arn)
                    .set_events(Some(events))
                    .set_filter(mine.filter())
                    .build()
                    .expect("id, ARN and events are set"),
            ),
            Target::Topic(arn) => topics.push(
                TopicConfiguration::builder()
                    .id(mine.id)
                    .topic_arn(arn)
                    .set_events(Some(events))
                    .set_filter(mine.filter())
                    .build()
                    .expect("id, ARN and events are set"),
            ),
        }
    }
    let lambdas = current
        .lambda_function_configurations()
        .iter()
        .filter(|l| !is_ours(l.id()))
        .cloned()
        .collect();
    Ok(NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(Some(topics))
        .set_lambda_function_configurations(Some(lambdas))
        .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(id: &str, events: &[&str], prefix: &str, suffix: &str) -> QueueConfiguration {
        let ours = Ours {
            id: "x",
            target: Target::Queue(String::new()),
            events: vec![],
            prefix: Some(prefix.to_owned()),
            suffix: Some(suffix.to_owned()),
        };
        QueueConfiguration::builder()
            .id(id)
            .queue_arn(format!("arn:aws:sqs:us-east-1:1:{id}"))
            .set_events(Some(events.iter().map(|e| Event::from(*e)).collect()))
            .set_filter(ours.filter())
            .build()
            .unwrap()
    }

    fn inbox(prefix: Option<&str>, events: Vec<&'static str>) -> Ours {
        Ours {
            id: INBOX_ID,
            target: Target::Queue("arn:aws:sqs:us-east-1:1:jobs".into()),
            events,
            prefix: prefix.map(str::to_owned),
            suffix: None,
        }
    }

    #[test]
    fn event_types_overlap_through_wildcards() {
        assert!(events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put"));
        assert!(events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*"));
        assert!(events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Put"
        ));
        assert!(!events_overlap(
            "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Copy"
        ));
        assert!(!events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*"));
    }

    #[test]
    fn others_entries_and_eventbridge_are_kept_and_ours_replaced() {
        let current = NotificationConfiguration::builder()
            .queue_configurations(queue("theirs", &[OBJECT_CREATED], "other/", ""))
            .queue_configurations(queue(INBOX_ID, &[OBJECT_CREATED], "old/", ""))
            .event_bridge_configuration(
                aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
            )
            .build();
        let merged = merge(&current, &[inbox(Some("photos/"), vec![OBJECT_CREATED])]).unwrap();
        let ids: Vec<_> = merged
            .queue_configurations()
            .iter()
            .map(|q| q.id().unwrap())
            .collect();
        assert_eq!(ids, ["theirs", INBOX_ID]);
        assert_eq!(
            merged.queue_configurations()[0],
            current.queue_configurations()[0]
        );
        assert_eq!(views(&merged)[1].prefix, "photos/");
        assert!(merged.event_bridge_configuration().is_some());
        // Merging again changes nothing: idempotent.
        let again = merge(&merged, &[inbox(Some("photos/"), vec![OBJECT_CREATED])]).unwrap();
        assert_eq!(again, merged);
    }

    #[test]
    fn an_overlapping_entry_is_named() {
        let current = NotificationConfiguration::builder()
            .queue_configurations(queue("theirs", &["s3:ObjectCreated:Put"], "other/", ""))
            .build();
        // No prefix overlaps every prefix.
        let err = merge(&current, &[inbox(None, vec![OBJECT_CREATED])]).unwrap_err();
        assert_eq!(err.id, "theirs");
        assert!(err.target.ends_with(":theirs"), "{}", err.target);
        assert!(err.to_string().contains("\"theirs\""), "{err}");
        // A prefix inside theirs overlaps too.
        assert!(merge(&current, &[inbox(Some("other/x/"), vec![OBJECT_CREATED])]).is_err());
        // A different prefix, or different events, do not.
        assert!(merge(&current, &[inbox(Some("photos/"), vec![OBJECT_CREATED])]).is_ok());
        let removed_only = merge(&current, &[inbox(None, vec![OBJECT_REMOVED])]);
        assert!(removed_only.is_ok());
    }

    #[test]
    fn overlapping_prefixes_with_distinct_suffixes_are_allowed() {
        let current = NotificationConfiguration::builder()
            .queue_configurations(queue("pngs", &[OBJECT_CREATED], "", ".png"))
            .build();
        let mut ours = inbox(None, vec![OBJECT_CREATED]);
        ours.suffix = Some(".jpg".into());
        assert!(merge(&current, &[ours.clone()]).is_ok());
        ours.suffix = Some("g".into()); // ".png" ends with "g"
        assert_eq!(merge(&current, &[ours]).unwrap_err().id, "pngs");
    }
}
