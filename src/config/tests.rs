use super::*;

#[test]
fn builtin_presets_parse() {
    let config = PresetConfig {
        presets: vec![],
        default_preset: "default".into(),
        routes: vec![],
    };
    let presets = config.presets().unwrap();
    assert_eq!(presets.resolve(None, None).unwrap().recipe.outputs.len(), 2);
}

#[test]
fn a_preset_flag_is_name_equals_recipe() {
    let (name, recipe) = parse_preset("small=resize,w=100").unwrap();
    assert_eq!(name, "small");
    assert_eq!(recipe.to_string(), "main:resize,w=100");
    assert!(parse_preset("small").is_err());
    assert!(parse_preset("sm all=resize,w=1").is_err());
    assert!(
        parse_preset("x=resize,w=abc")
            .unwrap_err()
            .contains("column")
    );
}

#[test]
fn without_api_keys_the_api_listens_on_loopback_only() {
    let mut api = ApiConfig {
        listen: "0.0.0.0:8080".parse().unwrap(),
        ..ApiConfig::default()
    };
    assert_eq!(api.effective_listen(), "127.0.0.1:8080".parse().unwrap());
    api.api_key_hashes = vec![parse_key_hash(&"ab".repeat(32)).unwrap()];
    assert_eq!(api.effective_listen(), "0.0.0.0:8080".parse().unwrap());
    assert!(parse_key_hash("not-hex").is_err());
    api.upload_expiry_secs = 86_400;
    assert_eq!(api.upload_expiry().as_secs(), MAX_UPLOAD_EXPIRY_SECS);
    api.download_expiry_secs = 700_000;
    assert_eq!(api.download_expiry().as_secs(), MAX_DOWNLOAD_EXPIRY_SECS);
    api.download_expiry_secs = 0;
    assert_eq!(api.download_expiry().as_secs(), 1);
}

#[test]
fn localstack_is_the_default_endpoint() {
    let aws = AwsConfig {
        endpoint_url: None,
        real_aws: false,
        region: "us-east-1".into(),
    };
    assert_eq!(aws.endpoint(), Some(LOCALSTACK_ENDPOINT));
    let real = AwsConfig {
        real_aws: true,
        ..aws
    };
    assert_eq!(real.endpoint(), None);
}

#[test]
fn a_route_to_an_unknown_preset_is_refused_at_start() {
    let mut config = PresetConfig {
        presets: vec![],
        default_preset: "default".into(),
        routes: vec![Route::parse("avatars/=avatar").unwrap()],
    };
    let presets = config.presets().unwrap();
    let resolved = presets.resolve_for("avatars/me.png", None, None).unwrap();
    assert_eq!(resolved.preset.as_deref(), Some("avatar"));
    assert_eq!(resolved.route, Some(config.routes[0].clone()));
    // Metadata wins over a route.
    let own = presets
        .resolve_for("avatars/me.png", None, Some("og"))
        .unwrap();
    assert_eq!((own.preset.as_deref(), own.route), (Some("og"), None));
    config.routes.push(Route::parse("x/=nope").unwrap());
    assert_eq!(
        config.presets().unwrap_err(),
        RecipeError::UnknownPreset("nope".into())
    );
}
