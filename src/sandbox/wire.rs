//! What travels between the worker and a sandbox child, over the child's
//! stdin and stdout: length-prefixed JSON heads and byte blobs.
//!
//! ```text
//! worker ─Request + image bytes─▶ child ─Reply::Planned (peak pixels)─▶ worker
//! worker ─"go" (after reserving the pixel budget)─▶ child
//! child ─Reply::Done + one blob per output (or Reply::Failed)─▶ worker
//! ```
//!
//! The worker trusts nothing the child says: every length is bounded
//! before anything is allocated for it.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::pipeline::{Analysis, Limits};

/// The largest JSON head either side accepts.
pub const MAX_HEAD: usize = 4 << 20;
/// The one byte that lets a planned child start decoding.
pub const GO: u8 = b'g';

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Canonical recipe text (it was parsed and validated before).
    pub recipe: String,
    pub limits: Limits,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The header was read and the recipe fits the limits; the job will
    /// hold about this many decoded pixels at its peak.
    Planned { peak_pixels: u64 },
    /// Every output is encoded; their bytes follow, in this order.
    Done {
        outputs: Vec<OutputHead>,
        /// Microseconds spent decoding, in the operations, encoding.
        times_us: [u64; 3],
        spans: Vec<RemoteSpan>,
        /// The source, as the manifest describes it ([`check_analysis`]).
        #[serde(default)]
        analysis: Option<Analysis>,
    },
    /// A permanent failure of this input, with its stable code.
    Failed {
        code: String,
        message: String,
        spans: Vec<RemoteSpan>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OutputHead {
    pub name: String,
    /// The output's format step in recipe syntax (`webp,q=80`).
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub len: u64,
    /// The ladder output this one is a width of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<String>,
}

/// Longest text in a child's [`Analysis`], in bytes: the format name, the
/// colour profile's name (128 characters of up to 4 bytes), the BlurHash
/// (28 characters at 4x3 components, 166 at most), the `#rrggbb` colour.
pub const MAX_ANALYSIS_TEXT: [usize; 4] = [16, 512, 166, 7];

/// Refuse an analysis whose strings are longer than a child could honestly
/// make: it goes into every manifest and API answer.
pub fn check_analysis(analysis: &Analysis) -> Result<(), String> {
    let texts = [
        analysis.format.as_str(),
        analysis.color_profile.as_deref().unwrap_or_default(),
        analysis.blurhash.as_str(),
        analysis.dominant_color.as_str(),
    ];
    for (text, max) in texts.iter().zip(MAX_ANALYSIS_TEXT) {
        if text.len() > max {
            return Err(format!(
                "an analysis text of {} bytes (at most {max})",
                text.len()
            ));
        }
    }
    Ok(())
}

/// A `tracing` span the child closed, to be replayed under the job's span.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteSpan {
    pub id: u64,
    pub parent: Option<u64>,
    pub name: String,
    /// Nanoseconds since the Unix epoch.
    pub start_ns: u64,
    pub end_ns: u64,
    pub fields: Vec<(String, serde_json::Value)>,
}

/// A JSON head: its length (u32, big-endian), then the JSON.
pub fn write_head<T: Serialize>(w: &mut impl Write, value: &T) -> std::io::Result<()> {
    let json = serde_json::to_vec(value)?;
    w.write_all(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes())?;
    w.write_all(&json)
}

/// A blob: its length (u64, big-endian), then the bytes.
pub fn write_blob(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_be_bytes())?;
    w.write_all(bytes)
}

pub fn read_head<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> std::io::Result<T> {
    let mut len = [0; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HEAD {
        return Err(std::io::Error::other(format!("a {len}-byte head")));
    }
    let mut json = vec![0; len];
    r.read_exact(&mut json)?;
    Ok(serde_json::from_slice(&json)?)
}

pub fn read_blob(r: &mut impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 8];
    r.read_exact(&mut len)?;
    let len = u64::from_be_bytes(len);
    if len > max {
        return Err(std::io::Error::other(format!(
            "a {len}-byte blob (at most {max})"
        )));
    }
    let mut bytes = vec![0; len as usize];
    r.read_exact(&mut bytes)?;
    Ok(bytes)
}
