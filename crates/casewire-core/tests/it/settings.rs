//! Settings precedence: environment, then configuration file, then the desktop's settings,
//! then defaults; and what the settings screen may change.

use std::collections::BTreeMap;

use casewire_core::{Settings, Source};

fn settings(env: &[(&str, &str)], file: Option<&str>, desktop: &[(&str, &str)]) -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(text) = file {
        std::fs::write(dir.path().join("casewire.toml"), text).expect("file");
    }
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::load(|k| env.get(k).cloned(), None, dir.path())
        .expect("settings")
        .with_desktop(
            desktop
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
}

#[test]
fn the_environment_beats_the_file_which_beats_the_desktop_which_beats_the_default() {
    let file = "[settings]\nKAFKA_TOPIC = \"from.file\"\nKAFKA_CLIENT_ID = \"file-client\"\n";
    let desktop = [
        ("KAFKA_TOPIC", "from.desktop"),
        ("KAFKA_CLIENT_ID", "desktop-client"),
        ("RETRY_INTERVAL", "2000"),
    ];
    let s = settings(&[("KAFKA_TOPIC", "from.env")], Some(file), &desktop);
    assert_eq!(
        s.lookup("KAFKA_TOPIC"),
        Some(("from.env".into(), Source::Environment))
    );
    assert_eq!(
        s.lookup("KAFKA_CLIENT_ID"),
        Some(("file-client".into(), Source::File))
    );
    assert_eq!(
        s.lookup("RETRY_INTERVAL"),
        Some(("2000".into(), Source::Desktop))
    );
    assert_eq!(s.lookup("MAX_RETRIES"), None);
    let views = s.describe();
    let view = |key: &str| views.iter().find(|v| v.key == key).expect("listed");
    assert_eq!(view("MAX_RETRIES").source, Source::Default);
    assert_eq!(view("MAX_RETRIES").value.as_deref(), Some("10"));
    assert!(!view("KAFKA_TOPIC").editable, "the environment fixes it");
    assert!(!view("KAFKA_CLIENT_ID").editable, "the file fixes it");
    assert!(view("RETRY_INTERVAL").editable);
}

#[test]
fn a_secret_is_never_shown_only_whether_it_is_set() {
    let s = settings(&[], None, &[("KAFKA_SASL_PASSWORD", "hunter2hunter2")]);
    let views = s.describe();
    let password = views
        .iter()
        .find(|v| v.key == "KAFKA_SASL_PASSWORD")
        .expect("listed");
    assert!(password.secret && password.is_set);
    assert_eq!(password.value, None);
    assert!(!format!("{views:?}").contains("hunter2"));
}

#[test]
fn a_refused_change_says_why_and_leaves_every_value_as_it_was() {
    let s = settings(
        &[("KAFKA_TOPIC", "env.topic")],
        None,
        &[("MAX_RETRIES", "4")],
    );
    for (key, value, reason) in [
        ("KAFKA_TOPIC", "other", "environment"),
        ("MAX_RETRIES", "many", "whole number"),
        ("CASEWIRE_THEME", "purple", "system, light or dark"),
        ("KAFKA_RELAY_WINDOW", "10", "cannot be changed from the app"),
        ("NO_SUCH", "1", "no setting"),
    ] {
        let change = BTreeMap::from([
            ("RETRY_INTERVAL".to_owned(), Some("1000".to_owned())),
            (key.to_owned(), Some(value.to_owned())),
        ]);
        let refused = s.changed(&change).expect_err(key);
        assert!(refused.to_string().contains(reason), "{key}: {refused}");
    }
    assert_eq!(s.get("MAX_RETRIES").as_deref(), Some("4"));
    assert_eq!(s.get("RETRY_INTERVAL"), None);
    let back = s
        .changed(&BTreeMap::from([("MAX_RETRIES".to_owned(), None)]))
        .expect("reset");
    assert_eq!(back.lookup("MAX_RETRIES"), None);
}

#[test]
fn an_unknown_setting_in_the_file_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("casewire.toml"),
        "[settings]\nKAFKA_BROKER = \"x:1\"\n",
    )
    .expect("file");
    let refused = Settings::load(|_| None, None, dir.path()).expect_err("refused");
    assert!(refused.to_string().contains("KAFKA_BROKER"), "{refused}");
}
