//! The HTTP edge under hostile clients: made-up methods, trickled headers,
//! idle connections, parallel large uploads to the old API.

use std::time::{Duration, Instant};

use imgflow::config::ApiConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Options, TestApp};

fn api_only() -> Options {
    Options {
        worker: None,
        ..Options::default()
    }
}

fn addr(app: &TestApp) -> String {
    app.api.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn metrics_stay_under_a_megabyte_after_ten_thousand_requests_with_made_up_methods() {
    // With API keys, as in the report: the requests are not even authorized.
    let app = TestApp::spawn_with(Options {
        api_keys: vec!["secret".into()],
        ..api_only()
    })
    .await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let http = app.http.clone();
        let base = app.api.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..625 {
                let len = fastrand::usize(100..4000);
                let method: String = (0..len).map(|_| fastrand::uppercase()).collect();
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let path = ["/v1/uploads", "/healthz", "/nope"][fastrand::usize(0..3)];
                let response = http
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_client_error());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = app
        .http
        .get(format!("{}/metrics", app.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.len() < 1_000_000,
        "/metrics is {} bytes",
        metrics.len()
    );
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
}

/// Read until the server closes the connection (or `limit` passes): when.
async fn closed_after(stream: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
}

#[tokio::test]
async fn a_connection_that_trickles_headers_is_closed_within_the_header_timeout() {
    let api = ApiConfig {
        header_read_timeout_secs: 2,
        ..ApiConfig::default()
    };
    let app = TestApp::spawn_with_api(api_only(), api).await;
    let stream = TcpStream::connect(addr(&app)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // One header byte every 200 ms: each read makes progress, none ends
    // the head. Stops when the server has closed the connection.
    let trickle = tokio::spawn(async move {
        writer
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await?;
        loop {
            writer.write_all(b"a").await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    closed_after(&mut reader, Duration::from_secs(10)).await;
    let took = started.elapsed();
    trickle.abort();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "closed after {took:?}, header timeout 2 s"
    );
}

#[tokio::test]
async fn three_hundred_idle_connections_do_not_stop_healthz_and_are_reaped() {
    let api = ApiConfig {
        header_read_timeout_secs: 3,
        ..ApiConfig::default()
    };
    let app = TestApp::spawn_with_api(api_only(), api).await;
    let mut idle = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
        // Half of them half-send a request, half send nothing at all.
        if i % 2 == 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        idle.push(stream);
    }
    let started = Instant::now();
    let health = app
        .http
        .get(format!("{}/healthz", app.api))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("/healthz answers while 300 connections idle");
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));

    // And the server lets go of them at the header timeout.
    let mut closing = Vec::new();
    for stream in idle {
        closing.push(tokio::spawn(async move {
            let (mut reader, _writer) = stream.into_split();
            closed_after(&mut reader, Duration::from_secs(8)).await
        }));
    }
    for closed in closing {
        closed.await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// A PNG whose header passes the probe (4000 x 3000 grey) padded to `len`
/// bytes with one IDAT chunk: what the API must buffer, not decode.
fn large_png(len: usize) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&4000u32.to_be_bytes());
    ihdr.extend_from_slice(&3000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let idat: Vec<u8> = (0..len - out.len() - 24).map(|i| (i % 251) as u8).collect();
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// PNG chunk CRC: flate2's CRC-32 (a dev-dependency already).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// The peak resident set size of a process, from /proc, in bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn ten_parallel_50_mb_old_api_uploads_keep_the_api_within_its_memory_budget() {
    const UPLOADS: usize = 10;
    const SIZE: usize = 50_000_000;
    let app = TestApp::spawn_with(api_only()).await;
    let (mut child, base) = app.api_process(&[]);
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "imgflow api did not start");
    let before = vm_hwm(child.id());

    let png = bytes::Bytes::from(large_png(SIZE));
    let mut uploads = Vec::new();
    for _ in 0..UPLOADS {
        let http = http.clone();
        let url = format!("{base}/api/images/upload/filter");
        let png = png.clone();
        uploads.push(tokio::spawn(async move {
            let part = reqwest::multipart::Part::stream_with_length(png, SIZE as u64)
                .file_name("big.png")
                .mime_str("image/png")
                .unwrap();
            let form = reqwest::multipart::Form::new().part("file", part);
            // No worker runs: each answers 504 after its wait; what counts
            // is that its bytes reached the inbox.
            http.post(url).multipart(form).send().await
        }));
    }
    // No worker runs, so a stored upload answers 504 after its wait for the
    // job, or 408 when the 60 s request time-out comes first (a loaded
    // machine); one that found no room in the budget for 20 s answers 503.
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for upload in uploads {
        let answer = match tokio::time::timeout(Duration::from_secs(240), upload)
            .await
            .expect("every upload answers")
            .unwrap()
        {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap();
                let code = body["code"].as_str().unwrap_or_default().to_owned();
                assert!(
                    matches!(
                        (status, code.as_str()),
                        (504 | 408, "timeout") | (503, "busy")
                    ),
                    "unexpected answer {status}: {body}"
                );
                format!("{status} {code}")
            }
            // The server answered 408 while the client was still sending.
            Err(error) => format!("cut: {error}"),
        };
        *answers.entry(answer).or_default() += 1;
    }
    let stored = app
        .clients
        .s3
        .list_objects_v2()
        .bucket(&app.resources.inbox)
        .prefix("api/")
        .send()
        .await
        .unwrap()
        .contents()
        .len();
    let peak = vm_hwm(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    let budget = imgflow::config::DEFAULT_LEGACY_UPLOAD_MEMORY;
    // The budget holds the upload bytes; the rest is the process itself
    // (runtime, SDK clients, buffers of the requests waiting their turn).
    let overhead = 128 * 1024 * 1024;
    eprintln!(
        "imgflow api VmHWM: {} MiB before, {} MiB after {UPLOADS} x {SIZE} B uploads ({stored} stored, answers {answers:?}; budget {} MiB)",
        before >> 20,
        peak >> 20,
        budget >> 20
    );
    assert!(stored >= 5, "only {stored} uploads stored: {answers:?}");
    assert!(
        peak < budget + overhead,
        "VmHWM {} MiB over the {} MiB budget + {} MiB",
        peak >> 20,
        budget >> 20,
        overhead >> 20
    );
}

#[tokio::test]
async fn the_old_api_lists_the_newest_results_first_past_one_listing_page() {
    let app = TestApp::spawn_with(api_only()).await;
    // 1,100 finished images, more than one ListObjects page, newest first by
    // key; and one with a UUID key from before, the oldest.
    let now = std::time::SystemTime::now();
    let ids: Vec<String> = (0..1100u64)
        .map(|i| {
            imgflow::inbox::new_legacy_id(now - Duration::from_millis(i), uuid::Uuid::new_v4())
        })
        .collect();
    let old = uuid::Uuid::new_v4().to_string();
    let mut keys: Vec<String> = ids
        .iter()
        .map(|id| format!("api/n/{id}/a.png/manifest.json"))
        .collect();
    keys.push(format!("api/{old}/a.png/manifest.json"));
    let s3 = app.clients.s3.clone();
    let outbox = app.resources.outbox.clone();
    let mut puts = tokio::task::JoinSet::new();
    for chunk in keys.chunks(64) {
        let (s3, outbox, chunk) = (s3.clone(), outbox.clone(), chunk.to_vec());
        puts.spawn(async move {
            for key in chunk {
                s3.put_object()
                    .bucket(&outbox)
                    .key(key)
                    .body(b"{}".to_vec().into())
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    puts.join_all().await;

    let first = app.get_json("/api/images?page=0&size=5").await;
    assert_eq!(first["total"], 1101, "{first}");
    assert_eq!(first["hasMore"], false);
    let listed: Vec<&str> = first["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["imageKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ids[..5].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let last = app.get_json("/api/images?page=220&size=5").await;
    assert_eq!(last["images"][0]["imageKey"], old.as_str(), "{last}");
    let too_deep = app
        .http
        .get(format!("{}/api/images?page=100&size=100", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(too_deep.status(), 400);
}
