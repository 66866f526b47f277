//! Routes: the preset for an object that names neither a recipe nor a
//! preset, chosen by its key's prefix (`avatars/=avatar`). The longest
//! matching prefix wins; with none, the default preset runs.

use std::fmt;

/// One `PREFIX=PRESET` rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Route {
    pub prefix: String,
    pub preset: String,
}

impl Route {
    /// `PREFIX=PRESET`: the prefix is any non-empty key start (up to the
    /// last `=`, so a prefix may hold one), the preset a preset name.
    pub fn parse(s: &str) -> Result<Route, String> {
        let (prefix, preset) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("expected PREFIX=PRESET, found {s:?}"))?;
        if prefix.chars().any(char::is_whitespace) {
            return Err(format!(
                "route {s:?}: routes are separated by spaces, so a prefix cannot hold one"
            ));
        }
        if prefix.is_empty() || prefix.len() > 1024 {
            return Err(format!(
                "route {s:?}: the prefix must be 1 to 1024 bytes (to route every key, set the default preset)"
            ));
        }
        if !is_preset_name(preset) {
            return Err(format!(
                "route {s:?}: preset name {preset:?}: use letters, digits, - and _"
            ));
        }
        Ok(Route {
            prefix: prefix.to_owned(),
            preset: preset.to_owned(),
        })
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.prefix, self.preset)
    }
}

/// Letters, digits, `-` and `_`: what a preset may be called.
pub fn is_preset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The route for `key`: the one with the longest prefix of it. Two routes
/// with the same prefix: the later one (a flag overrides the variable's).
pub fn route_for<'a>(routes: &'a [Route], key: &str) -> Option<&'a Route> {
    routes
        .iter()
        .enumerate()
        .filter(|(_, r)| key.starts_with(&r.prefix))
        .max_by_key(|(i, r)| (r.prefix.len(), *i))
        .map(|(_, r)| r)
}

/// Routes no event can reach once the notification only covers keys
/// starting with `filter` (`setup --prefix`): a route's keys must overlap
/// the filter's, i.e. one prefix must start with the other.
pub fn unreachable_routes<'a>(routes: &'a [Route], filter: &str) -> Vec<&'a Route> {
    routes
        .iter()
        .filter(|r| !(r.prefix.starts_with(filter) || filter.starts_with(&r.prefix)))
        .collect()
}

/// What `imgflow setup --route` prints: routes live in the workers'
/// configuration, not in AWS, so the workers must be given the same.
pub fn routes_note(routes: &[Route]) -> String {
    if routes.is_empty() {
        return String::new();
    }
    let list: Vec<String> = routes.iter().map(Route::to_string).collect();
    format!(
        "routes checked; start the workers with IMGFLOW_ROUTES=\"{}\" (routes live in the workers' configuration)\n",
        list.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[&str]) -> Vec<Route> {
        list.iter().map(|s| Route::parse(s).unwrap()).collect()
    }

    #[test]
    fn the_longest_prefix_wins() {
        let r = routes(&[
            "photos/=thumbnail",
            "photos/team/=avatar",
            "avatars/=avatar",
        ]);
        let preset = |key| route_for(&r, key).map(|r| r.preset.as_str());
        assert_eq!(preset("photos/cat.jpg"), Some("thumbnail"));
        assert_eq!(preset("photos/team/me.jpg"), Some("avatar"));
        assert_eq!(preset("avatars/x.png"), Some("avatar"));
        assert_eq!(preset("other/x.png"), None);
        assert_eq!(preset("photos"), None, "a prefix, not a folder name");
    }

    #[test]
    fn routes_outside_the_notifications_prefix_filter_are_found() {
        let r = routes(&["photos/=thumbnail", "avatars/=avatar", "p=og"]);
        let prefixes = |filter| -> Vec<&str> {
            unreachable_routes(&r, filter)
                .iter()
                .map(|r| r.prefix.as_str())
                .collect()
        };
        assert_eq!(prefixes("photos/"), ["avatars/"]);
        assert_eq!(prefixes(""), Vec::<&str>::new());
        assert_eq!(prefixes("photos/2026/"), ["avatars/"]);
        assert_eq!(prefixes("x/"), ["photos/", "avatars/", "p"]);
    }

    #[test]
    fn a_later_route_with_the_same_prefix_wins() {
        let r = routes(&["a/=one", "a/=two"]);
        assert_eq!(route_for(&r, "a/b").unwrap().preset, "two");
    }

    #[test]
    fn routes_parse_and_refuse_what_they_should() {
        assert_eq!(
            Route::parse("a=b/=avatar").unwrap(),
            Route {
                prefix: "a=b/".into(),
                preset: "avatar".into()
            }
        );
        assert!(Route::parse("avatars/").is_err());
        assert!(Route::parse("=avatar").is_err());
        assert!(Route::parse("avatars/=").is_err());
        assert!(Route::parse("avatars/=a b").is_err());
        assert_eq!(
            Route::parse("avatars/=avatar").unwrap().to_string(),
            "avatars/=avatar"
        );
    }
}
