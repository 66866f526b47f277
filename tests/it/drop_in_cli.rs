//! The drop-in commands of README.md and docs/*.md, run verbatim with the
//! real AWS CLI (from the test tools' virtualenv) and Debian's rclone,
//! against LocalStack, and every `# →` claim under them checked.
//!
//! A block to run follows a `<!-- drop-in: test -->` line. Its commands use
//! the default names (`imgflow-inbox`, `imgflow-outbox`, `imgflow-jobs`), so
//! this test sets those up and runs an `imgflow worker` on them. A claim
//! line lists outbox objects as `s3://imgflow-outbox/KEY`, each optionally
//! followed by `(WxH)` (the decoded size) or, for a manifest, by
//! `failed CODE`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imgflow::aws::Clients;
use imgflow::config::{QueueConfig, Resources};

use crate::harness::{CHELSEA, TEST_JOB_DEADLINE_SECS, aws_config, decoded};
use crate::tools;

const MARK: &str = "<!-- drop-in: test -->";
const OUTBOX: &str = "imgflow-outbox";

/// (file, script) of every marked block.
fn blocks() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (_, rest) in text
            .match_indices(MARK)
            .map(|(i, _)| ((), &text[i + MARK.len()..]))
        {
            let body = rest
                .trim_start()
                .strip_prefix("```sh\n")
                .expect("a ```sh block right after the mark");
            let end = body.find("\n```").expect("the block ends");
            out.push((file.display().to_string(), body[..end + 1].to_owned()));
        }
    }
    out
}

#[derive(Debug)]
struct Claim {
    key: String,
    size: Option<(u32, u32)>,
    failed: Option<String>,
}

fn claims(script: &str) -> Vec<Claim> {
    let mut out: Vec<Claim> = Vec::new();
    for line in script.lines().filter_map(|l| l.trim().strip_prefix("# →")) {
        let mut words = line.split_whitespace().peekable();
        while let Some(word) = words.next() {
            if let Some(key) = word.strip_prefix(&format!("s3://{OUTBOX}/")) {
                out.push(Claim {
                    key: key.to_owned(),
                    size: None,
                    failed: None,
                });
            } else if let Some(size) = word.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
                let (w, h) = size.split_once('x').expect("(WxH)");
                out.last_mut().unwrap().size = Some((w.parse().unwrap(), h.parse().unwrap()));
            } else if word == "failed" {
                out.last_mut().unwrap().failed = words.next().map(str::to_owned);
            } else {
                panic!("a claim word the test cannot check: {word:?} in {line:?}");
            }
        }
    }
    out
}

/// The `imgflow worker` on the default names; killed when dropped.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn every_drop_in_command_in_the_docs_runs_verbatim_and_does_what_it_claims() {
    let blocks = blocks();
    assert!(
        blocks.len() >= 2,
        "README and docs/drop-in.md have marked blocks"
    );
    let clients = Clients::new(&aws_config()).await;
    let defaults = Resources {
        inbox: "imgflow-inbox".into(),
        outbox: OUTBOX.into(),
        queue: "imgflow-jobs".into(),
    };
    imgflow::setup::setup(&clients, &defaults, &QueueConfig::default())
        .await
        .unwrap();
    // Nothing from an earlier run may stand in for this run's results.
    let all: Vec<(String, Claim)> = blocks
        .iter()
        .flat_map(|(file, script)| claims(script).into_iter().map(|c| (file.clone(), c)))
        .collect();
    assert!(all.len() >= 8, "{all:?}");
    for (_, claim) in &all {
        let folder = claim.key.rsplit_once('/').unwrap().0;
        for key in [claim.key.clone(), format!("{folder}/manifest.json")] {
            clients
                .s3
                .delete_object()
                .bucket(OUTBOX)
                .key(key)
                .send()
                .await
                .unwrap();
        }
    }

    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| imgflow::config::LOCALSTACK_ENDPOINT.into());
    let _worker = Worker(
        std::process::Command::new(env!("CARGO_BIN_EXE_imgflow"))
            .arg("worker")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("IMGFLOW_WORKER_LISTEN", "127.0.0.1:0")
            .env("IMGFLOW_POLL_WAIT", "1")
            .env("IMGFLOW_JOB_DEADLINE", TEST_JOB_DEADLINE_SECS.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );

    let dir = std::env::temp_dir().join(format!("imgflow-drop-in-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = image::load_from_memory(CHELSEA).unwrap().to_rgb8();
    cat.save(dir.join("cat.jpg")).unwrap();
    let venv_bin = tools::python().parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (file, script) in &blocks {
        let out = tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            // This machine points it at a proxy's CA file; rclone then
            // refuses plain-HTTP endpoints. Users without one see neither.
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .await
            .expect("bash runs");
        assert!(
            out.status.success(),
            "a block of {file} failed:\n{script}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for (file, claim) in &all {
        let bytes = wait_for(&clients, &claim.key)
            .await
            .unwrap_or_else(|| panic!("{file}: no s3://{OUTBOX}/{} after 60 s", claim.key));
        if let Some((w, h)) = claim.size {
            let (width, height, _) = decoded(&bytes);
            assert_eq!((width, height), (w, h), "{file}: {}", claim.key);
        }
        let manifest_key = format!("{}/manifest.json", claim.key.rsplit_once('/').unwrap().0);
        let manifest: serde_json::Value =
            serde_json::from_slice(&wait_for(&clients, &manifest_key).await.unwrap()).unwrap();
        match &claim.failed {
            None => assert_eq!(manifest["status"], "done", "{file}: {manifest}"),
            Some(code) => {
                assert_eq!(manifest["status"], "failed", "{file}: {manifest}");
                assert_eq!(manifest["error"]["code"], code.as_str(), "{manifest}");
                assert_eq!(manifest["outputs"], serde_json::json!([]));
                // Nothing but the manifest: never silently different outputs.
                let folder = claim.key.rsplit_once('/').unwrap().0;
                let listed = clients
                    .s3
                    .list_objects_v2()
                    .bucket(OUTBOX)
                    .prefix(format!("{folder}/"))
                    .send()
                    .await
                    .unwrap();
                let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
                assert_eq!(keys, [manifest_key.as_str()]);
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn wait_for(clients: &Clients, key: &str) -> Option<Vec<u8>> {
    for _ in 0..240 {
        if let Ok(object) = clients.s3.get_object().bucket(OUTBOX).key(key).send().await {
            return Some(object.body.collect().await.unwrap().into_bytes().to_vec());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

#[test]
fn the_claims_parser_reads_sizes_and_failures() {
    let c = claims(
        "x\n# → s3://imgflow-outbox/a/b.jpg/t.jpg (2x3) s3://imgflow-outbox/a/b.jpg/manifest.json failed recipe_mangled\n",
    );
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].size, Some((2, 3)));
    assert_eq!(c[1].failed.as_deref(), Some("recipe_mangled"));
}
