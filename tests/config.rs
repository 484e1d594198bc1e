//! Config parsing, overrides and validation.

use latentlab::config::{ExperimentConfig, preset_names};

#[test]
fn presets_parse_validate_and_round_trip_through_toml() {
    assert_eq!(
        preset_names(),
        ["seed", "quick", "fashion", "cosine", "large"]
    );
    for name in preset_names() {
        let cfg = ExperimentConfig::preset(name).unwrap();
        assert!(cfg.validate().is_empty(), "{name}: {:?}", cfg.validate());
        let again = ExperimentConfig::from_toml(&cfg.to_toml(), "round trip").unwrap();
        assert_eq!(cfg, again);
    }
    let seed = ExperimentConfig::preset("seed").unwrap();
    assert!(
        !seed.diffusion.standardize_latents,
        "the seed does not standardise latents"
    );
    assert_eq!(seed.ae_training.lr, 1e-4);
    assert_eq!(seed.diffusion_training.epochs, 100);
    assert!(
        ExperimentConfig::preset("cosine")
            .unwrap()
            .diffusion
            .standardize_latents
    );
}

#[test]
fn unknown_keys_are_errors_not_ignored() {
    let text = ExperimentConfig::preset("seed").unwrap().to_toml();
    let bad = text.replace("[unet]\n", "[unet]\nwidth = 3\n");
    let err = ExperimentConfig::from_toml(&bad, "my.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("my.toml") && err.contains("width"), "{err}");
}

#[test]
fn overrides_are_typed_and_checked() {
    let mut cfg = ExperimentConfig::preset("seed").unwrap();
    cfg.apply_override("diffusion_training.epochs=3").unwrap();
    cfg.apply_override("diffusion.schedule=cosine").unwrap();
    assert_eq!(cfg.diffusion_training.epochs, 3);
    assert_eq!(
        cfg.diffusion.schedule,
        latentlab::config::BetaSchedule::Cosine
    );
    let unknown = cfg
        .apply_override("diffusion.nope=1")
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("unknown key 'diffusion.nope'"),
        "{unknown}"
    );
    let typed = cfg
        .apply_override("diffusion.timesteps=many")
        .unwrap_err()
        .to_string();
    assert!(typed.contains("diffusion.timesteps=many"), "{typed}");
    assert!(cfg.apply_override("no-equals-sign").is_err());
}

#[test]
fn validate_names_every_bad_field() {
    let mut cfg = ExperimentConfig::preset("seed").unwrap();
    cfg.apply_override("ae_training.lr=0.0").unwrap();
    cfg.apply_override("autoencoder.latent_dim=60").unwrap();
    cfg.apply_override("unet.attention=[true]").unwrap();
    cfg.apply_override("sampling.steps=5000").unwrap();
    let fields: Vec<String> = cfg.validate().into_iter().map(|p| p.field).collect();
    for f in [
        "ae_training.lr",
        "autoencoder.latent_shape",
        "unet.attention",
        "sampling.steps",
    ] {
        assert!(
            fields.iter().any(|x| x == f),
            "{f} not reported in {fields:?}"
        );
    }
    let err = ExperimentConfig::load(Some("seed"), None, &["unet.groups=0".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unet.groups: must be at least 1"), "{err}");
}
