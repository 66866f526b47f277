//! Resource policies (an SQS queue's, an SNS topic's) merged by statement
//! `Sid`: imgflow's statement is added or replaced, every other statement
//! and top-level field is kept. Pure: no I/O.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Lets the inbox bucket send its notifications to the job queue.
pub const INBOX_SID: &str = "imgflow-inbox-notifications";
/// Lets the outbox bucket (or the "job finished" topic) send to the events queue or topic.
pub const FINISHED_SID: &str = "imgflow-outbox-job-finished";

/// `Allow` `principal` (`s3.amazonaws.com`, `sns.amazonaws.com`) to do
/// `action` on `resource`, only from `source_arn`.
pub fn allow(sid: &str, principal: &str, action: &str, resource: &str, source_arn: &str) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": principal},
        "Action": action,
        "Resource": resource,
        "Condition": {"ArnLike": {"aws:SourceArn": source_arn}},
    })
}

/// `current` (a policy document, or none) with `ours` in place of any
/// statement of the same `Sid`. A policy that is not JSON is an error:
/// better to stop than to replace what cannot be read.
pub fn merge(current: Option<&str>, ours: Value) -> anyhow::Result<Value> {
    let sid = ours["Sid"]
        .as_str()
        .context("our statement has a Sid")?
        .to_owned();
    let mut policy = match current.map(str::trim).filter(|p| !p.is_empty()) {
        Some(text) => serde_json::from_str::<Value>(text)
            .context("the existing policy is not JSON; fix or remove it, then run setup again")?,
        None => json!({"Version": "2012-10-17"}),
    };
    let Some(object) = policy.as_object_mut() else {
        bail!("the existing policy is not a JSON object");
    };
    let mut statements = match object.remove("Statement") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(list)) => list,
        // IAM allows one statement without the array.
        Some(one) => vec![one],
    };
    statements.retain(|s| s["Sid"].as_str() != Some(sid.as_str()));
    statements.push(ours);
    object.insert("Statement".into(), Value::Array(statements));
    object
        .entry("Version")
        .or_insert_with(|| Value::from("2012-10-17"));
    Ok(policy)
}

/// Each statement as (its Sid or position, its JSON) for a plan.
pub fn statements(policy: Option<&Value>) -> Vec<(String, String)> {
    let list = match policy.map(|p| &p["Statement"]) {
        Some(Value::Array(list)) => list.clone(),
        Some(Value::Null) | None => vec![],
        Some(one) => vec![one.clone()],
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let sid = s["Sid"]
                .as_str()
                .map_or_else(|| format!("(statement {})", i + 1), str::to_owned);
            (sid, s.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Value {
        allow(
            INBOX_SID,
            "s3.amazonaws.com",
            "sqs:SendMessage",
            "arn:q",
            "arn:aws:s3:::in",
        )
    }

    #[test]
    fn other_statements_and_fields_are_kept_and_ours_replaced() {
        let current = json!({
            "Version": "2012-10-17",
            "Id": "theirs",
            "Statement": [
                {"Sid": "someone-else", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"},
                {"Sid": INBOX_SID, "Effect": "Allow", "Action": "old"},
            ],
        });
        let merged = merge(Some(&current.to_string()), ours()).unwrap();
        assert_eq!(merged["Id"], "theirs");
        let sids: Vec<_> = statements(Some(&merged)).into_iter().map(|s| s.0).collect();
        assert_eq!(sids, ["someone-else", INBOX_SID]);
        assert_eq!(merged["Statement"][0], current["Statement"][0]);
        assert_eq!(merged["Statement"][1], ours());
        let again = merge(Some(&merged.to_string()), ours()).unwrap();
        assert_eq!(again, merged, "idempotent");
    }

    #[test]
    fn no_policy_or_a_single_statement_object_are_understood() {
        let fresh = merge(None, ours()).unwrap();
        assert_eq!(fresh["Statement"], json!([ours()]));
        let single = json!({"Statement": {"Sid": "x", "Effect": "Deny"}});
        let merged = merge(Some(&single.to_string()), ours()).unwrap();
        assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(merged["Version"], "2012-10-17");
    }

    #[test]
    fn an_unreadable_policy_stops_setup() {
        assert!(merge(Some("{not json"), ours()).is_err());
    }
}
