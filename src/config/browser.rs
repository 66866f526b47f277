//! What browsers need: the origins allowed to call the API and S3 (CORS),
//! and the secret that signs job-scoped read tokens.

use clap::Args;

/// How long a job-scoped read token stays valid, in seconds.
pub const DEFAULT_JOB_TOKEN_SECS: u64 = 3600;

/// Web origins (`https://app.example.com`, `http://127.0.0.1:3000`) whose
/// pages may call the API and PUT to the inbox / GET from the outbox.
#[derive(Args, Debug, Clone, Default)]
pub struct CorsOrigins {
    /// A web origin (scheme://host, or scheme://host:port) allowed to upload from a browser; repeat,
    /// or separate with spaces in the variable
    #[arg(long = "cors-origin", env = "IMGFLOW_CORS_ORIGINS", value_delimiter = ' ',
          value_parser = parse_origin)]
    pub origins: Vec<String>,
}

impl CorsOrigins {
    /// The origins, without the empty values a blank variable gives.
    pub fn list(&self) -> Vec<String> {
        self.origins
            .iter()
            .filter(|o| !o.is_empty())
            .cloned()
            .collect()
    }
}

/// The API's browser-facing settings.
#[derive(Args, Debug, Clone, Default)]
pub struct BrowserConfig {
    #[command(flatten)]
    pub cors: CorsOrigins,

    /// Secret (any string, 32+ bytes of randomness) that signs job-scoped read tokens;
    /// every API replica needs the same one [default: random per process]
    #[arg(long, env = "IMGFLOW_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,

    /// How long a job-scoped read token stays valid, in seconds
    #[arg(long, env = "IMGFLOW_JOB_TOKEN_EXPIRY", default_value_t = DEFAULT_JOB_TOKEN_SECS)]
    pub job_token_expiry_secs: u64,
}

/// An origin as browsers send it in `Origin`: scheme, host, optional port,
/// nothing else (no path, no trailing slash), so comparing strings is exact.
/// An empty value (`IMGFLOW_CORS_ORIGINS=`, or two spaces) is no origin:
/// [`CorsOrigins::list`] skips it.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?}: an origin starts with http:// or https://"))?;
    let ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !ok {
        return Err(format!(
            "{s:?}: an origin is scheme://host[:port], with no path or trailing slash"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            parse_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert!(parse_origin("https://example.com/").is_err());
        assert!(parse_origin("example.com").is_err());
        assert!(parse_origin("*").is_err());
        assert_eq!(parse_origin(" ").unwrap(), "");
    }
}
