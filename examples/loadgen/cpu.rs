//! Where the CPU went during a phase: LocalStack (its whole process group),
//! the api, the workers, this harness, and the machine as a whole (the
//! rest is other people's work on a shared machine).

use crate::stack::Pids;

/// Clock ticks per second (`getconf CLK_TCK`), 100 on Linux.
const TICKS: f64 = 100.0;

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub localstack: f64,
    pub api: f64,
    pub workers: f64,
    /// This process, plus its children that have exited (`imgflow process`).
    pub harness: f64,
    pub machine_busy: f64,
    pub machine_total: f64,
    pub load1: f64,
}

impl Sample {
    pub fn take(pids: &Pids) -> Sample {
        let (busy, total) = machine();
        Sample {
            localstack: group_cpu(pids.localstack),
            api: pids.api.map_or(0.0, |p| process_cpu(&p.to_string(), false)),
            // With the sandbox children each worker has reaped: they decode.
            workers: pids
                .workers
                .iter()
                .map(|p| process_cpu(&p.to_string(), true))
                .sum(),
            harness: process_cpu("self", true),
            machine_busy: busy,
            machine_total: total,
            load1: load1(),
        }
    }

    /// CPU seconds spent between `self` and `later`, and the load at the end.
    pub fn until(&self, later: &Sample) -> Sample {
        Sample {
            localstack: later.localstack - self.localstack,
            api: later.api - self.api,
            workers: later.workers - self.workers,
            harness: later.harness - self.harness,
            machine_busy: later.machine_busy - self.machine_busy,
            machine_total: later.machine_total - self.machine_total,
            load1: later.load1,
        }
    }
}

/// utime + stime (and the reaped children's, if asked) of `/proc/<pid>`, in seconds.
fn process_cpu(pid: &str, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // After ')': state is index 0, so utime (field 14) is index 11.
    let n = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let own = n(11) + n(12);
    let reaped = if children { n(13) + n(14) } else { 0.0 };
    (own + reaped) / TICKS
}

/// Every process whose process group is `pgid`.
fn group_cpu(pgid: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(2).map(str::to_owned))
                })
                .is_some_and(|pgrp| pgrp == pgid.to_string())
        })
        .map(|pid| process_cpu(&pid, false))
        .sum()
}

/// (busy, total) CPU seconds of the whole machine since boot, all cores.
fn machine() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let total: f64 = values.iter().take(8).sum();
    let idle = values.get(3).unwrap_or(&0.0) + values.get(4).unwrap_or(&0.0);
    ((total - idle) / TICKS, total / TICKS)
}

pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}
