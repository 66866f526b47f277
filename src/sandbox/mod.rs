//! Untrusted bytes are decoded in sandboxed child processes of the same
//! binary (`imgflow sandbox-child`), never in the worker that holds the
//! queue: a decoder bug, a bomb or an allocation failure costs one child,
//! not the worker. Each child does one job and exits (nothing an input does
//! can reach the next input); a few are started ahead so a job does not wait
//! for one. See [`child`] for what a child may do.
//!
//! Architecture invariant: the worker never calls the pipeline on S3 bytes
//! itself; it calls [`Sandbox::start`].

pub mod child;
pub mod wire;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use crate::pipeline::{Analysis, Limits, Rendition, StageTimes};
use crate::recipe::Recipe;
pub use wire::RemoteSpan;
use wire::{OutputHead, Reply, Request};

/// The hidden subcommand a child runs.
pub const CHILD_COMMAND: &str = "sandbox-child";

/// How children are started and bounded.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The `imgflow` binary (the tests run the worker inside the test binary).
    pub exe: PathBuf,
    /// A child's address-space limit (RLIMIT_AS), in bytes.
    pub memory_bytes: u64,
    /// A job's wall-clock deadline; the child's CPU limit is a little more.
    pub deadline: Duration,
    /// Children kept started and waiting.
    pub warm: usize,
}

/// Why a sandboxed job did not produce renditions.
#[derive(Debug)]
pub enum Failure {
    /// The input fails, permanently, with this stable code.
    Job { code: &'static str, message: String },
    /// The child died (signal, abort, limit); `why` says how.
    Died(String),
    /// The deadline passed; the child was killed.
    Timeout,
}

/// What a finished job made.
pub struct Ran {
    pub renditions: Vec<Rendition>,
    pub times: StageTimes,
    /// The child's spans, for the caller to replay under the job's span.
    pub spans: Vec<RemoteSpan>,
    /// The child's peak resident memory (VmHWM), if it could be read.
    pub peak_rss_bytes: Option<u64>,
    /// The source, as the child described it.
    pub analysis: Option<Analysis>,
}

pub struct Sandbox {
    config: SandboxConfig,
    idle: Mutex<Vec<Child>>,
}

/// A child that has read the image's header and planned the job; it waits
/// for [`Planned::finish`] (after the caller has reserved `peak_pixels`).
pub struct Planned {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    pub peak_pixels: u64,
    limits: Limits,
    recipe_outputs: usize,
    deadline: Duration,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Sandbox {
        Sandbox {
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let cpu_secs = self.config.deadline.as_secs() + 2;
        Command::new(&self.config.exe)
            .arg(CHILD_COMMAND)
            .arg(self.config.memory_bytes.to_string())
            .arg(cpu_secs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_clear()
            // A fresh process faults in every page it decodes into; huge
            // pages (where the kernel offers them on request) make that
            // hundreds of faults instead of thousands. One malloc arena:
            // a decoder's threads (libheif's libde265) would otherwise get
            // arenas of their own, and trimming one reads
            // /proc/sys/vm/overcommit_memory, an `open` seccomp refuses.
            .env(
                "GLIBC_TUNABLES",
                "glibc.malloc.hugetlb=1:glibc.malloc.arena_max=1",
            )
            .kill_on_drop(true)
            .spawn()
    }

    /// A started child that is still alive, and start another for the next job.
    fn child(&self) -> std::io::Result<Child> {
        let mut idle = self.idle.lock().unwrap();
        let mut taken = None;
        while let Some(mut child) = idle.pop() {
            if matches!(child.try_wait(), Ok(None)) {
                taken = Some(child);
                break;
            }
        }
        while idle.len() < self.config.warm {
            match self.spawn() {
                Ok(child) => idle.push(child),
                Err(_) => break,
            }
        }
        drop(idle);
        match taken {
            Some(child) => Ok(child),
            None => self.spawn(),
        }
    }

    /// Hand the job to a child and wait (within the deadline) for its plan.
    pub async fn start(
        &self,
        bytes: &[u8],
        recipe: &Recipe,
        limits: &Limits,
    ) -> Result<Planned, Failure> {
        let mut child = self
            .child()
            .map_err(|e| Failure::Died(format!("cannot start a sandbox child: {e}")))?;
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Failure::Died("a sandbox child without pipes".into()));
        };
        let mut request = Vec::with_capacity(bytes.len() + 1024);
        let head = Request {
            recipe: recipe.to_string(),
            limits: *limits,
        };
        wire::write_head(&mut request, &head).expect("writing to a Vec");
        wire::write_blob(&mut request, bytes).expect("writing to a Vec");
        let deadline = Instant::now() + self.config.deadline;
        let planned = tokio::time::timeout_at(deadline, async {
            stdin.write_all(&request).await?;
            stdin.flush().await?;
            read_reply(&mut stdout).await
        })
        .await;
        match planned {
            Err(_) => Err(kill(child, Failure::Timeout).await),
            Ok(Err(_)) => Err(died(child).await),
            Ok(Ok(Reply::Planned { peak_pixels })) => Ok(Planned {
                child,
                stdin,
                stdout,
                peak_pixels,
                limits: *limits,
                recipe_outputs: recipe.max_renditions(),
                deadline: self.config.deadline,
            }),
            Ok(Ok(Reply::Failed { code, message, .. })) => Err(Failure::Job {
                code: stable_code(&code),
                message,
            }),
            Ok(Ok(Reply::Done { .. })) => Err(kill(child, protocol("Done before go")).await),
        }
    }
}

impl Planned {
    /// Let the child decode and encode; wait for its renditions within the deadline.
    pub async fn finish(mut self) -> Result<Ran, Failure> {
        let deadline = Instant::now() + self.deadline;
        let max_output = output_cap(&self.limits);
        let outputs = self.recipe_outputs;
        let result = tokio::time::timeout_at(deadline, async {
            self.stdin.write_all(&[wire::GO]).await?;
            self.stdin.flush().await?;
            let reply = read_reply(&mut self.stdout).await?;
            let mut blobs = Vec::new();
            if let Reply::Done { outputs: heads, .. } = &reply {
                if heads.len() > outputs {
                    return Err(std::io::Error::other("more outputs than the recipe has"));
                }
                for head in heads {
                    blobs.push(read_blob(&mut self.stdout, max_output.min(head.len)).await?);
                }
            }
            Ok((reply, blobs))
        })
        .await;
        match result {
            Err(_) => Err(kill(self.child, Failure::Timeout).await),
            Ok(Err(_)) => Err(died(self.child).await),
            Ok(Ok((Reply::Failed { code, message, .. }, _))) => Err(Failure::Job {
                code: stable_code(&code),
                message,
            }),
            Ok(Ok((
                Reply::Done {
                    outputs,
                    times_us,
                    spans,
                    analysis,
                },
                blobs,
            ))) => {
                let renditions = analysis
                    .as_ref()
                    .map_or(Ok(()), wire::check_analysis)
                    .and_then(|()| {
                        outputs
                            .into_iter()
                            .zip(blobs)
                            .map(rendition)
                            .collect::<Result<Vec<_>, _>>()
                    });
                let peak_rss_bytes = self.child.id().and_then(peak_rss);
                match renditions {
                    Ok(renditions) => Ok(Ran {
                        peak_rss_bytes,
                        renditions,
                        times: StageTimes {
                            decode: Duration::from_micros(times_us[0]),
                            process: Duration::from_micros(times_us[1]),
                            encode: Duration::from_micros(times_us[2]),
                        },
                        spans,
                        analysis,
                    }),
                    Err(why) => Err(kill(self.child, protocol(&why)).await),
                }
            }
            Ok(Ok((Reply::Planned { .. }, _))) => {
                Err(kill(self.child, protocol("planned twice")).await)
            }
        }
    }
}

/// A live process's peak resident set size (VmHWM), from /proc.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn rendition((head, bytes): (OutputHead, Vec<u8>)) -> Result<Rendition, String> {
    let format = Recipe::parse(&head.format)
        .ok()
        .and_then(|r| r.outputs.into_iter().next()?.format)
        .ok_or_else(|| format!("an unknown format {:?}", head.format))?;
    Ok(Rendition {
        name: head.name,
        format,
        width: head.width,
        height: head.height,
        bytes,
        ladder: head.ladder,
    })
}

/// No output may be larger than this (a bound on what a compromised child
/// could make the worker allocate): 8 bytes per allowed pixel, at least 64 MiB.
fn output_cap(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(8).max(64 << 20)
}

fn protocol(why: &str) -> Failure {
    Failure::Died(format!("the sandbox child broke the protocol: {why}"))
}

async fn kill(mut child: Child, failure: Failure) -> Failure {
    let _ = child.start_kill();
    let _ = child.wait().await;
    failure
}

/// The child stopped answering: say how it ended.
async fn died(mut child: Child) -> Failure {
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => status,
        _ => {
            let _ = child.start_kill();
            return Failure::Died("the sandbox child stopped answering".into());
        }
    };
    Failure::Died(describe(status))
}

fn describe(status: ExitStatus) -> String {
    match status.signal() {
        Some(libc::SIGKILL) => {
            "the sandbox child was killed (SIGKILL: out of memory, or by an operator)".into()
        }
        Some(libc::SIGSYS) => {
            "the sandbox child made a system call outside its allowlist (SIGSYS)".into()
        }
        Some(libc::SIGXCPU) => "the sandbox child ran out of CPU time (SIGXCPU)".into(),
        Some(libc::SIGABRT) => {
            "the sandbox child aborted (SIGABRT; an allocation over its memory limit?)".into()
        }
        Some(signal) => format!("the sandbox child died of signal {signal}"),
        None => format!("the sandbox child exited with {status}"),
    }
}

/// The codes a child may report, as the `'static` strs metrics and manifests use.
fn stable_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "unsupported_image",
        "image_too_large",
        "corrupt_image",
        "encode_failed",
        "crop_outside_image",
        "lossless_unavailable",
        "operation_failed",
        "invalid_recipe",
        "recipe_too_expensive",
    ];
    KNOWN
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("operation_failed")
}

async fn read_reply(r: &mut ChildStdout) -> std::io::Result<Reply> {
    let len = r.read_u32().await? as usize;
    if len > wire::MAX_HEAD {
        return Err(std::io::Error::other(format!("a {len}-byte head")));
    }
    let mut json = vec![0; len];
    r.read_exact(&mut json).await?;
    Ok(serde_json::from_slice(&json)?)
}

async fn read_blob(r: &mut ChildStdout, max: u64) -> std::io::Result<Vec<u8>> {
    let len = r.read_u64().await?;
    if len > max {
        return Err(std::io::Error::other(format!(
            "a {len}-byte output (at most {max})"
        )));
    }
    let mut bytes = vec![0; len as usize];
    r.read_exact(&mut bytes).await?;
    Ok(bytes)
}
