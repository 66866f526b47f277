//! The independent tools tests compare imgflow with, from the virtualenv
//! that `scripts/test-tools.sh` makes (the test command runs it first).

use std::path::PathBuf;
use std::process::Command;

/// The test tools' Python: `$IMGFLOW_TEST_PYTHON`, else `.test-tools/venv`.
pub fn python() -> PathBuf {
    std::env::var_os("IMGFLOW_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".test-tools/venv/bin/python")
        })
}

/// A command from the same virtualenv's `bin/` (e.g. `aws`).
#[allow(dead_code)]
pub fn venv_command(name: &str) -> Command {
    let bin = python()
        .parent()
        .expect("python lives in a bin/")
        .join(name);
    Command::new(bin)
}

/// Runs a Python snippet with the test tools' interpreter and returns its
/// stdout; panics with stderr when it fails.
#[allow(dead_code)]
pub fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run the test tools' python (scripts/test-tools.sh makes it)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 from python")
}
