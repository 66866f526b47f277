//! The source analysis a job writes beside its outputs (manifest
//! `analysis`, `GET /v1/jobs/{id}`), against independent tools: Pillow's
//! LittleCMS for the profile name, a pure-Python BlurHash decoder for the
//! placeholder.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{CHELSEA, ROCKET, TestApp};
use crate::tools;

/// Decode a BlurHash with PyPI's `blurhash` (halcy's pure-Python one) at
/// the source's size, shrink both to the hash's 4x3 components (box
/// filter) and compare: the mean absolute difference per channel (0-255)
/// and the correlation of the 12 cells' luma.
const COMPARE: &str = r#"
import sys, json, blurhash
from PIL import Image
src = Image.open(sys.argv[1]).convert("RGB")
w, h = src.size
out = {}
for name, hash in zip(sys.argv[2::2], sys.argv[3::2]):
    rows = blurhash.decode(hash, w // 8, h // 8)
    img = Image.new("RGB", (w // 8, h // 8))
    img.putdata([tuple(max(0, min(255, int(round(c)))) for c in p) for row in rows for p in row])
    a = list(src.resize((4, 3), Image.BOX).getdata())
    b = list(img.resize((4, 3), Image.BOX).getdata())
    mad = sum(abs(x - y) for p, q in zip(a, b) for x, y in zip(p, q)) / (3 * len(a))
    la = [0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2] for p in a]
    lb = [0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2] for p in b]
    ma, mb = sum(la) / len(la), sum(lb) / len(lb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(la, lb))
    var = (sum((x - ma) ** 2 for x in la) * sum((y - mb) ** 2 for y in lb)) ** 0.5
    out[name] = {"mad": mad, "corr": cov / var if var else 0.0}
print(json.dumps(out))
"#;

const PROFILE_NAME: &str = r#"
import sys, io
from PIL import Image, ImageCms
icc = Image.open(sys.argv[1]).info["icc_profile"]
print(ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip())
"#;

async fn upload_and_wait(app: &TestApp, name: &str, bytes: &[u8], recipe: &str) -> Value {
    let content_type = if name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let (status, upload) = app
        .post_upload(json!({"filename": name, "content_type": content_type,
                            "size": bytes.len(), "recipe": recipe}))
        .await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    assert_eq!(app.put_upload(&upload, bytes).await, StatusCode::OK);
    app.job(&upload, "?wait=20").await
}

#[tokio::test]
async fn the_manifest_and_the_job_describe_the_source_and_its_blurhash_decodes_to_it() {
    let app = TestApp::spawn().await;
    let job = upload_and_wait(
        &app,
        "chelsea.png",
        CHELSEA,
        "thumb:resize,w=128,h=128,fit=cover,gravity=face/webp",
    )
    .await;
    assert_eq!(job["status"], "done", "{job}");
    let analysis = &job["analysis"];
    let key = job["outputs"][0]["key"].as_str().unwrap();
    let manifest = app
        .wait_for_manifest(key.strip_suffix("/thumb.webp").unwrap())
        .await;
    // The API serves the manifest's analysis as it is.
    assert_eq!(
        serde_json::to_value(manifest.analysis.as_ref().unwrap()).unwrap(),
        *analysis
    );
    assert_eq!(analysis["width"], 451);
    assert_eq!(analysis["height"], 300);
    assert_eq!(analysis["format"], "png");
    assert_eq!(analysis["alpha"], false);
    assert_eq!(analysis["animated"], false);
    assert_eq!(analysis["frames"], 1);

    let scratch = std::env::temp_dir().join(format!("imgflow-analysis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let (chelsea, rocket) = (scratch.join("chelsea.png"), scratch.join("rocket.jpg"));
    std::fs::write(&chelsea, CHELSEA).unwrap();
    std::fs::write(&rocket, ROCKET).unwrap();
    let path = chelsea.to_str().unwrap();
    let pillow = tools::run_python(PROFILE_NAME, &[path]);
    assert_eq!(analysis["color_profile"], pillow.trim());

    let colour = analysis["dominant_color"].as_str().unwrap();
    assert!(
        colour.len() == 7
            && colour.starts_with('#')
            && colour[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{colour}"
    );
    let hash = analysis["blurhash"].as_str().unwrap();
    assert_eq!(hash.len(), 28, "4x3 components: {hash}");
    // A control: the hash of another photo, which must compare worse.
    let other = upload_and_wait(&app, "rocket.jpg", ROCKET, "resize,w=64").await;
    let other_hash = other["analysis"]["blurhash"].as_str().unwrap();
    let compared: Value = serde_json::from_str(&tools::run_python(
        COMPARE,
        &[path, "own", hash, "other", other_hash],
    ))
    .unwrap();
    let (own, other) = (&compared["own"], &compared["other"]);
    let _ = std::fs::remove_dir_all(&scratch);
    let mad = own["mad"].as_f64().unwrap();
    let corr = own["corr"].as_f64().unwrap();
    // Measured: own mad 7.7, corr 0.88; rocket's hash: mad 56, corr 0.10.
    assert!(mad <= 12.0 && corr >= 0.8, "own {own}, other {other}");
    assert!(
        other["mad"].as_f64().unwrap() > 2.0 * mad,
        "own {own}, other {other}"
    );
    assert!(
        other["corr"].as_f64().unwrap() < corr,
        "own {own}, other {other}"
    );
}
