//! Configuration checks: bad values are clear errors, secrets never printed.

use std::path::PathBuf;

use casewire_relay::{RelayConfig, SaslMechanism, Secret, SecurityProtocol};

fn error_of(config: &RelayConfig) -> String {
    match config.client_config() {
        Ok(_) => panic!("configuration accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_empty_broker_list_is_refused() {
    assert_eq!(
        error_of(&RelayConfig::new(" , ")),
        "invalid Kafka configuration: KAFKA_BROKERS is empty: give at least one host:port"
    );
}

#[test]
fn a_broker_without_a_valid_port_is_named() {
    let message = error_of(&RelayConfig::new("kafka1:9092,kafka2:99999"));
    assert!(message.contains("\"kafka2:99999\""), "{message}");
    assert!(error_of(&RelayConfig::new("kafka1")).contains("host:port"));
}

#[test]
fn a_bad_topic_name_is_refused() {
    let config = RelayConfig {
        topic: "fraud events!".into(),
        ..RelayConfig::new("k:9092")
    };
    assert!(error_of(&config).contains("KAFKA_TOPIC"));
}

#[test]
fn guarantees_cannot_be_overridden_by_properties() {
    let mut config = RelayConfig::new("k:9092");
    config.properties.insert("acks".into(), "1".into());
    assert!(error_of(&config).contains("acks is set by Casewire"));
}

#[test]
fn sasl_needs_a_mechanism_and_credentials() {
    let mut config = RelayConfig::new("k:9092");
    config.security.protocol = SecurityProtocol::SaslSsl;
    assert!(error_of(&config).contains("needs sasl.mechanism"));
    config.security.sasl_mechanism = Some(SaslMechanism::ScramSha512);
    assert!(error_of(&config).contains("needs sasl.username and sasl.password"));
    config.security.username = Some("relay".into());
    config.security.password = Some(Secret::new("hunter2"));
    config
        .client_config()
        .expect("complete SASL settings are accepted");
}

#[test]
fn a_missing_ca_file_is_named() {
    let mut config = RelayConfig::new("k:9092");
    config.security.protocol = SecurityProtocol::Ssl;
    config.security.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    assert!(error_of(&config).contains("/nonexistent/ca.pem"));
}

#[test]
fn protocol_and_mechanism_names_are_parsed_with_clear_errors() {
    assert_eq!(
        "SASL_SSL".parse::<SecurityProtocol>().expect("known"),
        SecurityProtocol::SaslSsl
    );
    assert_eq!(
        "scram-sha-256".parse::<SaslMechanism>().expect("known"),
        SaslMechanism::ScramSha256
    );
    let err = "kerberos"
        .parse::<SaslMechanism>()
        .expect_err("unknown")
        .to_string();
    assert!(err.contains("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"));
}

#[test]
fn secrets_are_never_printed() {
    let mut config = RelayConfig::new("k:9092");
    config.security.password = Some(Secret::new("hunter2"));
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("Secret(***)"));
}

fn settings(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

#[test]
fn the_guides_variables_configure_the_relay() {
    let config = RelayConfig::from_settings(
        settings(&[
            ("KAFKA_BROKERS", "localhost:9092,broker2:9092"),
            ("KAFKA_TOPIC", "fraud.events.test"),
            ("KAFKA_CLIENT_ID", "laptop-17"),
            ("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("KAFKA_SASL_USERNAME", "relay"),
            ("KAFKA_SASL_PASSWORD", "hunter2"),
            ("KAFKA_MESSAGE_TIMEOUT_MS", "15000"),
        ]),
        [("linger.ms".to_owned(), "10".to_owned())].into(),
    )
    .expect("valid");
    assert_eq!(config.brokers, "localhost:9092,broker2:9092");
    assert_eq!(config.topic, "fraud.events.test");
    assert_eq!(config.client_id, "laptop-17");
    assert_eq!(
        config.security.sasl_mechanism,
        Some(SaslMechanism::ScramSha256)
    );
    assert_eq!(config.message_timeout, std::time::Duration::from_secs(15));
    assert_eq!(config.properties["linger.ms"], "10");
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn missing_brokers_and_bad_numbers_are_named() {
    let err = RelayConfig::from_settings(settings(&[]), Default::default())
        .expect_err("no brokers")
        .to_string();
    assert!(err.contains("KAFKA_BROKERS is not set"), "{err}");
    let err = RelayConfig::from_settings(
        settings(&[
            ("KAFKA_BROKERS", "k:9092"),
            ("KAFKA_MESSAGE_TIMEOUT_MS", "soon"),
        ]),
        Default::default(),
    )
    .expect_err("bad number")
    .to_string();
    assert!(err.contains("KAFKA_MESSAGE_TIMEOUT_MS=\"soon\""), "{err}");
    let err = RelayConfig::from_settings(
        settings(&[("KAFKA_BROKERS", "k:9092")]),
        [("no.such.property".to_owned(), "1".to_owned())].into(),
    )
    .expect_err("unknown property")
    .to_string();
    assert!(err.contains("no.such.property"), "{err}");
}
