//! [`Desired`] against [`Current`], as the [`Plan`] setup prints.

use aws_sdk_s3::types::NotificationConfiguration;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::plan::{Mark, Plan, Section};
use super::state::QueueState;
use super::{Current, Desired, Options, cors, notify, policy};
use crate::config::Resources;
use crate::inbox;
use crate::recipe::Route;

impl Desired {
    pub(super) fn plan(&self, current: &Current, res: &Resources, options: &Options) -> Plan {
        let mut plan = Plan::default();
        let exists = |yes: bool, what: String| {
            if yes {
                (Mark::Keep, format!("{what} exists"))
            } else {
                (Mark::Add, format!("create {what}"))
            }
        };
        let mut made = Section::new("resources");
        made.lines.extend([
            exists(current.inbox_exists, format!("bucket s3://{}", res.inbox)),
            exists(current.outbox_exists, format!("bucket s3://{}", res.outbox)),
            exists(current.queue.is_some(), format!("queue {}", res.queue)),
            exists(current.dlq.is_some(), format!("queue {}", res.dlq())),
        ]);
        if let Some(name) = &options.events_queue {
            made.lines.push(exists(
                current.events_queue.is_some(),
                format!("queue {name}"),
            ));
        }
        if let Some(name) = &options.events_topic {
            made.lines
                .push(exists(current.topic.is_some(), format!("topic {name}")));
        }
        plan.push(made);

        plan.push(attributes(&res.queue, &self.queue, &self.queue_attributes));
        plan.push(attributes(&res.dlq(), &self.dlq, &self.dlq_attributes));
        plan.push(policy_section(
            format!("policy of queue {}", res.queue),
            self.queue.attributes.get(&QueueAttributeName::Policy),
            self.queue_attributes
                .iter()
                .find(|(k, _)| *k == QueueAttributeName::Policy)
                .map(|(_, v)| v),
        ));
        plan.push(notifications(
            &res.inbox,
            &current.inbox_notifications,
            &self.inbox_notifications,
        ));
        if let Some(after) = &self.outbox_notifications {
            plan.push(notifications(
                &res.outbox,
                &current.outbox_notifications,
                after,
            ));
        }
        if let Some((queue, merged)) = &self.events_queue {
            let name = options.events_queue.as_deref().unwrap_or_default();
            let merged = merged.to_string();
            plan.push(policy_section(
                format!("policy of queue {name}"),
                queue.attributes.get(&QueueAttributeName::Policy),
                Some(&merged),
            ));
        }
        if let Some((arn, merged)) = &self.topic {
            let merged = merged.to_string();
            let before = current.topic.as_ref().and_then(|t| t.policy.clone());
            plan.push(policy_section(
                format!("policy of topic {arn}"),
                before.as_ref(),
                Some(&merged),
            ));
            if let Some(queue) = &self.subscribe {
                let subscribed = current
                    .topic
                    .as_ref()
                    .is_some_and(|t| t.sqs_subscribers.contains(queue));
                let mark = if subscribed { Mark::Keep } else { Mark::Add };
                plan.push(
                    Section::new(format!("subscriptions of topic {arn}"))
                        .line(mark, format!("sqs {queue} (raw message delivery)")),
                );
            }
        }
        for ((bucket, after), (_, before, _)) in self.cors.iter().zip(&current.cors) {
            plan.push(cors::section(bucket, before, after));
        }
        plan.notes.extend(filter_notes(options));
        plan
    }
}

/// The attributes setup sets on a queue, now and after.
fn attributes(name: &str, queue: &QueueState, wanted: &[(QueueAttributeName, String)]) -> Section {
    let shown = |key: &QueueAttributeName, value: &str| -> String {
        if *key != QueueAttributeName::RedrivePolicy {
            return value.to_owned();
        }
        // Compare what matters, not how SQS spells the number.
        let redrive: Value = serde_json::from_str(value).unwrap_or_default();
        format!(
            "to {} after {} receives",
            redrive["deadLetterTargetArn"].as_str().unwrap_or("?"),
            redrive["maxReceiveCount"].to_string().trim_matches('"')
        )
    };
    let mut before = vec![];
    let mut after = vec![];
    for (key, value) in wanted {
        if *key == QueueAttributeName::Policy {
            continue; // a section of its own
        }
        if let Some(now) = queue.attributes.get(key) {
            before.push((key.as_str().to_owned(), shown(key, now)));
        }
        after.push((key.as_str().to_owned(), shown(key, value)));
    }
    Section::diff(format!("attributes of queue {name}"), &before, &after)
}

fn policy_section(title: String, before: Option<&String>, after: Option<&String>) -> Section {
    let parse = |text: Option<&String>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
    Section::diff(
        title,
        &policy::statements(parse(before).as_ref()),
        &policy::statements(parse(after).as_ref()),
    )
}

fn notifications(
    bucket: &str,
    before: &NotificationConfiguration,
    after: &NotificationConfiguration,
) -> Section {
    let keyed = |config: &NotificationConfiguration| -> Vec<(String, String)> {
        let mut entries: Vec<(String, String)> = notify::views(config)
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let id = v.id.clone().unwrap_or_else(|| format!("(entry {})", i + 1));
                (id, v.describe())
            })
            .collect();
        if config.event_bridge_configuration().is_some() {
            entries.push(("EventBridge".into(), "every event".into()));
        }
        entries
    };
    Section::diff(
        format!("notifications of s3://{bucket}"),
        &keyed(before),
        &keyed(after),
    )
}

/// What `setup --route` prints for the workers (see
/// [`crate::recipe::routes_note`]), and a note for each route outside
/// `--prefix`: its keys never start a job.
pub fn routes_note(routes: &[Route], options: &Options) -> String {
    let mut out = crate::recipe::routes_note(routes);
    if let Some(prefix) = options.prefix.as_deref().filter(|p| !p.is_empty()) {
        for route in crate::recipe::unreachable_routes(routes, prefix) {
            out += &format!(
                "note: route {route} lies outside --prefix {prefix:?}: its objects never start a job\n"
            );
        }
    }
    out
}

/// A filter that leaves out the keys the API writes leaves its uploads unprocessed.
fn filter_notes(options: &Options) -> Vec<String> {
    let prefix = options.prefix.clone().unwrap_or_default();
    let suffix = options.suffix.clone().unwrap_or_default();
    if prefix.is_empty() && suffix.is_empty() {
        return vec![];
    }
    let examples = [
        inbox::upload_key(uuid::Uuid::nil(), "photo.jpg"),
        format!("{}<id>/photo.jpg", inbox::LEGACY_NEWEST_FIRST),
    ];
    examples
        .iter()
        .filter(|key| !(key.starts_with(&prefix) && key.ends_with(&suffix)))
        .map(|key| {
            format!(
                "keys the API writes, such as {key}, do not match the filter: \
                 uploads through the API will not be processed"
            )
        })
        .take(1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(prefix: Option<&str>, suffix: Option<&str>) -> Options {
        Options {
            prefix: prefix.map(str::to_owned),
            suffix: suffix.map(str::to_owned),
            ..Options::default()
        }
    }

    #[test]
    fn a_filter_leaving_out_the_apis_keys_gets_a_note() {
        assert!(filter_notes(&with(None, None)).is_empty());
        assert!(filter_notes(&with(None, Some(".jpg"))).is_empty());
        let note = filter_notes(&with(Some("photos/"), None));
        assert_eq!(note.len(), 1);
        assert!(note[0].contains("uploads/"), "{note:?}");
        // The old API's keys (api/n/…) are left out by uploads/ alone.
        assert_eq!(filter_notes(&with(Some("uploads/"), None)).len(), 1);
        assert_eq!(filter_notes(&with(None, Some(".png"))).len(), 1);
    }

    #[test]
    fn a_route_outside_the_prefix_gets_a_note() {
        let routes = [
            Route::parse("photos/team/=avatar").unwrap(),
            Route::parse("avatars/=avatar").unwrap(),
        ];
        let note = routes_note(&routes, &with(Some("photos/"), None));
        assert!(note.contains("IMGFLOW_ROUTES="), "{note}");
        assert!(
            note.contains("route avatars/=avatar lies outside"),
            "{note}"
        );
        assert!(!note.contains("route photos/team/=avatar lies"), "{note}");
        assert!(!routes_note(&routes, &with(None, None)).contains("outside"));
    }
}
