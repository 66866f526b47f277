//! Job-scoped read tokens: what a browser may hold instead of an API key.
//!
//! `jt1.<job id>.<expiry, unix seconds>.<HMAC-SHA256 of the rest, hex>`:
//! stateless (any replica with the same `IMGFLOW_TOKEN_SECRET` accepts it),
//! good for one job's status and events until it expires, nothing else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Tokens start with this, so they are never mistaken for API keys.
pub const PREFIX: &str = "jt1.";

pub struct Signer {
    key: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature is wrong")]
    Invalid,
    #[error("the token has expired; ask for a new one")]
    Expired,
    #[error("the token is for another job")]
    OtherJob,
}

impl Signer {
    /// Signs with `secret`, or with a random key when there is none: then
    /// tokens die with the process and other replicas refuse them.
    pub fn new(secret: Option<&str>) -> Signer {
        // An empty variable (compose's `${IMGFLOW_TOKEN_SECRET:-}`) is no secret.
        let key = match secret.filter(|s| !s.is_empty()) {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "IMGFLOW_TOKEN_SECRET is not set: job tokens are signed with a random key, \
                     valid only in this process until it restarts; set it when running several API replicas"
                );
                // Two v4 UUIDs: 244 bits from the operating system's RNG.
                [Uuid::new_v4(), Uuid::new_v4()]
                    .iter()
                    .flat_map(|u| *u.as_bytes())
                    .collect()
            }
        };
        Signer { key }
    }

    /// A token for `job` valid for `ttl`, and when it expires (unix seconds).
    pub fn issue(&self, job: Uuid, ttl: Duration) -> (String, u64) {
        let expires = now_secs() + ttl.as_secs();
        let body = format!("{PREFIX}{job}.{expires}");
        let sig = hex(&self.mac(&body).finalize().into_bytes());
        (format!("{body}.{sig}"), expires)
    }

    /// Whether `token` is ours, unexpired, and for `job`.
    pub fn verify(&self, token: &str, job: Uuid) -> Result<(), TokenError> {
        let (body, sig) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let sig = unhex(sig).ok_or(TokenError::Invalid)?;
        // Constant time: the signature is checked before anything it signs.
        self.mac(body)
            .verify_slice(&sig)
            .map_err(|_| TokenError::Invalid)?;
        let rest = body.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let (id, expires) = rest.split_once('.').ok_or(TokenError::Invalid)?;
        let expires: u64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        if expires < now_secs() {
            return Err(TokenError::Expired);
        }
        match Uuid::parse_str(id) {
            Ok(id) if id == job => Ok(()),
            Ok(_) => Err(TokenError::OtherJob),
            Err(_) => Err(TokenError::Invalid),
        }
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(body.as_bytes());
        mac
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_its_own_job_only_until_it_expires() {
        let signer = Signer::new(Some("secret"));
        let (job, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (token, _) = signer.issue(job, Duration::from_secs(60));
        assert_eq!(signer.verify(&token, job), Ok(()));
        assert_eq!(signer.verify(&token, other), Err(TokenError::OtherJob));
        assert_eq!(
            Signer::new(Some("another secret")).verify(&token, job),
            Err(TokenError::Invalid)
        );
        let forged = token.replacen(&job.to_string(), &other.to_string(), 1);
        assert_eq!(signer.verify(&forged, other), Err(TokenError::Invalid));
        let (old, _) = signer.issue(job, Duration::ZERO);
        let body = old.rsplit_once('.').unwrap().0;
        let expired_body = body.replace(&format!(".{}", now_secs()), ".1");
        let expired = format!(
            "{expired_body}.{}",
            hex(&signer.mac(&expired_body).finalize().into_bytes())
        );
        assert_eq!(signer.verify(&expired, job), Err(TokenError::Expired));
        assert_eq!(signer.verify("jt1.garbage", job), Err(TokenError::Invalid));
    }
}
