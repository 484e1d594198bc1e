//! Config parsing, overrides and validation.

use latentlab::config::{ExperimentConfig, preset_names};

#[test]
fn presets_parse_validate_and_round_trip_through_toml() {
    assert_eq!(
        preset_names(),
        [
            "seed",
            "quick",
            "fashion",
            "cosine",
            "large",
            "conditional",
            "conditional-fashion"
        ]
    );
    // The seed stays the seed: unconditional, its parameter count unchanged.
    assert_eq!(ExperimentConfig::preset("seed").unwrap().unet.classes, 0);
    assert_eq!(
        ExperimentConfig::preset("conditional")
            .unwrap()
            .unet
            .classes,
        10
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
    assert!(
        err.contains("unet.groups: 0 is outside the allowed range 1..=1024"),
        "{err}"
    );
}

/// Every leaf of a TOML document (and every element of its lists) as a path
/// of keys and indexes. Walks the serialised config, so a new field is
/// covered without editing the tests below.
fn leaf_paths(value: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                path.push(k.clone());
                leaf_paths(v, path, out);
                path.pop();
            }
        }
        toml::Value::Array(items) => {
            out.push(path.clone());
            for (i, v) in items.iter().enumerate() {
                path.push(format!("#{i}"));
                leaf_paths(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn set_path(doc: &mut toml::Value, path: &[String], value: toml::Value) {
    let mut slot = doc;
    for part in path {
        slot = match part.strip_prefix('#') {
            Some(i) => &mut slot.as_array_mut().unwrap()[i.parse::<usize>().unwrap()],
            None => slot.as_table_mut().unwrap().get_mut(part).unwrap(),
        };
    }
    *slot = value;
}

fn hostile_values() -> Vec<toml::Value> {
    use toml::Value::*;
    let ints = |v: &[i64]| Array(v.iter().map(|&i| Integer(i)).collect());
    vec![
        Integer(0),
        Integer(-1),
        Integer(1),
        Integer(3),
        Integer(1 << 40),
        Integer(i64::MAX),
        Integer(i64::MIN),
        Float(0.0),
        Float(-1.0),
        Float(f64::NAN),
        Float(f64::INFINITY),
        Float(f64::NEG_INFINITY),
        Float(1e300),
        Float(1e-300),
        String(std::string::String::new()),
        String("../../x\u{7}".into()),
        String("x".repeat(10_000)),
        Boolean(true),
        Array(vec![]),
        ints(&[0]),
        ints(&[16, 0, 64]),
        ints(&[i64::MAX]),
        ints(&[-1, 2]),
        ints(&[1; 40]),
        Array(vec![String("a".into())]),
        Table(Default::default()),
    ]
}

#[test]
fn hostile_values_in_every_field_are_errors_never_panics() {
    let mut checked = 0;
    for preset in ["seed", "quick", "large"] {
        let cfg = ExperimentConfig::preset(preset).unwrap();
        let doc = toml::Value::try_from(&cfg).unwrap();
        let mut paths = Vec::new();
        leaf_paths(&doc, &mut Vec::new(), &mut paths);
        assert!(paths.len() > 40, "{} leaves", paths.len());
        for path in &paths {
            for value in hostile_values() {
                let mut bad = doc.clone();
                set_path(&mut bad, path, value.clone());
                let outcome = std::panic::catch_unwind(|| {
                    let text = toml::to_string(&bad).unwrap_or_default();
                    match ExperimentConfig::from_toml(&text, "hostile.toml") {
                        Ok(cfg) => {
                            let problems = cfg.validate();
                            for p in &problems {
                                assert!(!p.field.is_empty() && !p.message.contains('\n'));
                            }
                            // Accepted values stay within what this machine can train.
                            if problems.is_empty() {
                                let est = latentlab::config::MemoryEstimate::of(&cfg).unwrap();
                                assert!(est.peak_bytes() < 64 << 30, "{est:?}");
                            }
                        }
                        Err(e) => assert!(e.to_string().contains("hostile.toml")),
                    }
                });
                assert!(
                    outcome.is_ok(),
                    "{preset}: {} = {value} panicked",
                    path.join(".")
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 3000, "{checked} cases");
}

#[test]
fn bad_values_name_the_field_the_value_and_the_allowed_range() {
    for (set, field, expect) in [
        (
            "unet.channels=[16,0,64]",
            "unet.channels",
            "entry 0 of [16, 0, 64] is outside the allowed range 1..=2048",
        ),
        (
            "unet.time_dim=100000",
            "unet.time_dim",
            "100000 must be an even number in the allowed range 4..=4096",
        ),
        (
            "unet.heads=9223372036854775807",
            "unet.heads",
            "9223372036854775807 is outside the allowed range 1..=64",
        ),
        (
            "autoencoder.latent_shape=[4611686018427387904, 4, 4]",
            "autoencoder.latent_shape",
            "outside the allowed range 1..=128",
        ),
        (
            "diffusion.ema_decay=nan",
            "diffusion.ema_decay",
            "NaN is outside the allowed range [0, 1)",
        ),
        (
            "ae_training.grad_clip=inf",
            "ae_training.grad_clip",
            "inf is outside the allowed range [0, 1000000]",
        ),
    ] {
        let err = ExperimentConfig::load(Some("quick"), None, &[set.to_string()])
            .unwrap_err()
            .to_string();
        let line = err
            .lines()
            .find(|l| l.trim_start().starts_with(field))
            .unwrap_or_else(|| panic!("{set}: no line for {field} in {err}"));
        assert!(line.contains(expect), "{set}: {line}");
    }
}

#[test]
fn an_empty_channel_list_is_one_problem_not_three() {
    let err = ExperimentConfig::load(Some("quick"), None, &["autoencoder.channels=[]".into()])
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        lines,
        ["  autoencoder.channels: [] has 0 entries; it needs 1 to 2"]
    );
}

#[test]
fn a_config_too_big_for_the_machine_is_refused_with_its_estimate() {
    let mut cfg = ExperimentConfig::preset("quick").unwrap();
    assert!(cfg.validate_with_memory(Some(1 << 30)).is_empty());
    cfg.apply_override("unet.channels=[1024, 2048, 2048]")
        .unwrap();
    cfg.apply_override("diffusion_training.batch_size=8192")
        .unwrap();
    let problems = cfg.validate_with_memory(Some(16 << 30));
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(p.field, "diffusion_training.batch_size");
    assert!(
        p.message.contains("GiB") && p.message.contains("16.0 GiB is available"),
        "{p}"
    );
    // The same config passes where the memory is (nominally) there.
    assert!(cfg.validate_with_memory(Some(u64::MAX)).is_empty());
}

#[test]
fn parameter_estimates_match_the_seed_architecture() {
    use latentlab::config::MemoryEstimate;
    let seed = MemoryEstimate::of(&ExperimentConfig::preset("seed").unwrap()).unwrap();
    assert_eq!((seed.ae_params, seed.unet_params), (224_945, 624_097));
}

#[test]
fn configs_written_before_final_scores_load_with_the_default() {
    let old = ExperimentConfig::preset("quick")
        .unwrap()
        .to_toml()
        .lines()
        .filter(|l| !l.starts_with("final_samples"))
        .collect::<Vec<_>>()
        .join("\n");
    let cfg = ExperimentConfig::from_toml(&old, "an old run's config.toml").unwrap();
    assert_eq!(cfg.checkpoint.final_samples, 1000);
    assert_eq!(
        ExperimentConfig::preset("seed")
            .unwrap()
            .checkpoint
            .final_samples,
        500
    );
    let mut one = cfg.clone();
    one.checkpoint.final_samples = 1;
    let problems = one.validate();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "checkpoint.final_samples"),
        "{problems:?}"
    );
}
