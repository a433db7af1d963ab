//! Every `EntityError` crosses the wire as a `WireEntityError` and comes
//! back as the same variant with the same fields: the same `Display` (down
//! the whole source chain), `is_unavailable`, `outcome_unknown` and
//! rejection, with JSON and with bincode.

use std::error::Error as _;
use std::time::Duration;

use nexus_core::codec::{Bincode, Codec, Json, PayloadCodec};
use nexus_core::lease::LeaseError;
use nexus_core::remote::{WireAnswer, from_wire, to_wire};
use nexus_core::{CodecError, EntityError, ExpectedVersion, RecoveryError, StoreError, StreamId};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("refused {amount}: {reason}")]
struct Refused {
    reason: String,
    amount: i64,
}

fn stream() -> StreamId {
    StreamId::new("wallet-alice")
}

fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::Conflict {
            stream: stream(),
            expected: ExpectedVersion::Exact(3),
            actual: 4,
        },
        StoreError::DuplicateEventId {
            stream: stream(),
            event_id: uuid::Uuid::from_u128(7),
        },
        StoreError::StreamArchived { stream: stream() },
        StoreError::Timeout {
            source: "statement timeout".into(),
        },
        StoreError::Fenced {
            stream: stream(),
            shard: 7,
            epoch: 9,
        },
        StoreError::FencingUnsupported {
            store: "InMemoryEventStore",
        },
        StoreError::InvalidRequest("limit 0".into()),
        StoreError::Unavailable {
            source: "connection refused".into(),
        },
        StoreError::Ambiguous {
            source: "connection reset".into(),
        },
        StoreError::PoolExhausted { waited_ms: 2000 },
        StoreError::Backend {
            source: Box::new(std::io::Error::other("disk full")),
        },
    ]
}

fn codec_errors() -> Vec<CodecError> {
    vec![
        CodecError::UnknownEventType {
            event_type: "x".into(),
            schema_version: 2,
            known: "a, b".into(),
        },
        CodecError::UnsupportedSchemaVersion {
            event_type: "x".into(),
            found: 3,
            current: 2,
        },
        CodecError::Decode {
            what: "snapshot".into(),
            codec: "json",
            source: "eof".into(),
        },
        CodecError::Encode {
            what: "state".into(),
            codec: "bincode",
            source: "too big".into(),
        },
        CodecError::Upcast {
            event_type: "x".into(),
            from: 1,
            reason: "no field".into(),
        },
    ]
}

/// One of every variant (and of every nested variant).
fn every_error() -> Vec<EntityError<Refused>> {
    let mut errors = vec![
        EntityError::Rejected(Refused {
            reason: "no funds".into(),
            amount: 5,
        }),
        EntityError::MailboxFull {
            stream: stream(),
            capacity: 64,
        },
        EntityError::Timeout {
            stream: stream(),
            after: Duration::from_millis(1500),
        },
        EntityError::ShuttingDown { stream: stream() },
        EntityError::Conflict {
            stream: stream(),
            expected: ExpectedVersion::NoStream,
            actual: 2,
            attempts: 4,
        },
        EntityError::NotFound { stream: stream() },
        EntityError::Panicked {
            stream: stream(),
            message: "boom".into(),
        },
        EntityError::RestartLimit {
            stream: stream(),
            restarts: 5,
            window: Duration::from_secs(10),
        },
        EntityError::Stopped { stream: stream() },
        EntityError::Recovery(RecoveryError::Gap {
            stream: stream(),
            expected: 3,
            found: 5,
        }),
        EntityError::NotOwner {
            stream: stream(),
            source: LeaseError::Held {
                stream: stream(),
                holder: "node-2".into(),
            },
        },
        EntityError::NotOwner {
            stream: stream(),
            source: LeaseError::Lost {
                stream: stream(),
                shard: 3,
                epoch: 8,
            },
        },
        EntityError::NotOwner {
            stream: stream(),
            source: LeaseError::Backend {
                stream: stream(),
                source: "pg down".into(),
            },
        },
        EntityError::Unreachable {
            stream: stream(),
            node: "10.0.0.2:7000".into(),
            source: "refused".into(),
        },
        EntityError::Interrupted {
            stream: stream(),
            node: "10.0.0.2:7000".into(),
            source: "reset".into(),
        },
    ];
    for (source, again, once_more) in zip3(store_errors(), store_errors(), store_errors()) {
        errors.push(EntityError::Store(source));
        errors.push(EntityError::OutcomeUnknown {
            stream: stream(),
            attempts: 3,
            waited: Duration::from_secs(2),
            source: again,
        });
        errors.push(EntityError::Recovery(RecoveryError::Store {
            stream: stream(),
            source: once_more,
        }));
    }
    for (source, again, once_more) in zip3(codec_errors(), codec_errors(), codec_errors()) {
        errors.push(EntityError::Encode {
            stream: stream(),
            source,
        });
        errors.push(EntityError::Undeliverable { source: again });
        errors.push(EntityError::Recovery(RecoveryError::Codec {
            stream: stream(),
            version: 4,
            source: once_more,
        }));
    }
    errors
}

fn zip3<T>(a: Vec<T>, b: Vec<T>, c: Vec<T>) -> impl Iterator<Item = (T, T, T)> {
    a.into_iter().zip(b).zip(c).map(|((a, b), c)| (a, b, c))
}

/// The variant's name, as `Debug` starts with it.
fn variant(error: &impl std::fmt::Debug) -> String {
    let debug = format!("{error:?}");
    debug.split(['(', ' ', '{']).next().unwrap().to_owned()
}

/// Every message down the source chain.
fn chain(error: &EntityError<Refused>) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(error) = source {
        messages.push(error.to_string());
        source = error.source();
    }
    messages
}

fn round_trip<W: Codec + PayloadCodec<Refused>>(
    error: EntityError<Refused>,
    codec: &W,
) -> EntityError<Refused> {
    // Through the whole answer's bytes, as it travels.
    let bytes = WireAnswer::from_result(Err(error), codec)
        .to_bytes()
        .unwrap();
    match WireAnswer::from_bytes(&bytes)
        .unwrap()
        .into_result::<_, Refused>(codec)
    {
        Ok(_) => panic!("an error came back as a reply"),
        Err(error) => error,
    }
}

fn assert_same(local: &EntityError<Refused>, remote: &EntityError<Refused>) {
    assert_eq!(variant(local), variant(remote), "{local}");
    assert_eq!(chain(local), chain(remote), "{local}");
    assert_eq!(local.is_unavailable(), remote.is_unavailable(), "{local}");
    assert_eq!(local.is_retryable(), remote.is_retryable(), "{local}");
    assert_eq!(local.outcome_unknown(), remote.outcome_unknown(), "{local}");
    assert_eq!(local.rejection(), remote.rejection(), "{local}");
    if let (EntityError::Store(local), EntityError::Store(remote)) = (local, remote) {
        assert_eq!(variant(local), variant(remote));
        assert_eq!(local.is_retryable(), remote.is_retryable());
        assert_eq!(local.is_ambiguous(), remote.is_ambiguous());
        assert_eq!(local.is_fenced(), remote.is_fenced());
    }
}

fn every_variant_round_trips_with<W: Codec + PayloadCodec<Refused>>(codec: &W) {
    // Errors are not `Clone`: the table is built twice, once to compare.
    let locals = every_error();
    assert_eq!(locals.len(), 15 + 3 * 11 + 3 * 5);
    for (local, sent) in locals.iter().zip(every_error()) {
        assert_same(local, &round_trip(sent, codec));
    }
}

#[test]
fn every_variant_round_trips_with_json() {
    every_variant_round_trips_with(&Json);
}

#[test]
fn every_variant_round_trips_with_bincode() {
    every_variant_round_trips_with(&Bincode);
}

#[test]
fn a_rejection_that_does_not_decode_here_is_undeliverable() {
    #[derive(Debug, Serialize, Deserialize, thiserror::Error)]
    #[error("other")]
    struct Other(u8, u8);
    let wire = to_wire(
        EntityError::Rejected(Refused {
            reason: "x".into(),
            amount: 1,
        }),
        &Json,
    );
    let error: EntityError<Other> = from_wire(wire, &Json);
    assert!(
        matches!(error, EntityError::Undeliverable { .. }),
        "{error}"
    );
    assert!(error.outcome_unknown() && !error.is_unavailable());
}

/// The fields of a generated error, so that it can be built twice.
#[derive(Clone, Debug)]
enum Spec {
    Rejected(String, i64),
    Store(u8, String, u64),
    OutcomeUnknown(String, u32, u64, u8, String),
    Interrupted(String, String, String),
    Panicked(String, String),
    MailboxFull(String, usize),
}

fn store_error(kind: u8, text: &str, number: u64) -> StoreError {
    match kind % 6 {
        0 => StoreError::Conflict {
            stream: StreamId::new(text),
            expected: ExpectedVersion::Exact(number),
            actual: number / 2,
        },
        1 => StoreError::Unavailable {
            source: text.into(),
        },
        2 => StoreError::Ambiguous {
            source: text.into(),
        },
        3 => StoreError::Backend {
            source: text.into(),
        },
        4 => StoreError::InvalidRequest(text.to_owned()),
        _ => StoreError::PoolExhausted { waited_ms: number },
    }
}

fn build(spec: &Spec) -> EntityError<Refused> {
    match spec.clone() {
        Spec::Rejected(reason, amount) => EntityError::Rejected(Refused { reason, amount }),
        Spec::Store(kind, text, number) => EntityError::Store(store_error(kind, &text, number)),
        Spec::OutcomeUnknown(s, attempts, ms, kind, text) => EntityError::OutcomeUnknown {
            stream: StreamId::new(s),
            attempts,
            waited: Duration::from_millis(ms),
            source: store_error(kind, &text, ms),
        },
        Spec::Interrupted(s, node, source) => EntityError::Interrupted {
            stream: StreamId::new(s),
            node,
            source: source.into(),
        },
        Spec::Panicked(s, message) => EntityError::Panicked {
            stream: StreamId::new(s),
            message,
        },
        Spec::MailboxFull(s, capacity) => EntityError::MailboxFull {
            stream: StreamId::new(s),
            capacity,
        },
    }
}

fn arbitrary_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (".*", any::<i64>()).prop_map(|(r, a)| Spec::Rejected(r, a)),
        (any::<u8>(), ".*", any::<u64>()).prop_map(|(k, t, n)| Spec::Store(k, t, n)),
        (".*", any::<u32>(), any::<u64>(), any::<u8>(), ".*")
            .prop_map(|(s, a, ms, k, t)| Spec::OutcomeUnknown(s, a, ms, k, t)),
        (".*", ".*", ".*").prop_map(|(s, n, t)| Spec::Interrupted(s, n, t)),
        (".*", ".*").prop_map(|(s, m)| Spec::Panicked(s, m)),
        (".*", any::<usize>()).prop_map(|(s, c)| Spec::MailboxFull(s, c)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_errors_keep_their_variant_messages_and_answers(spec in arbitrary_spec()) {
        let local = build(&spec);
        assert_same(&local, &round_trip(build(&spec), &Json));
        assert_same(&local, &round_trip(build(&spec), &Bincode));
    }
}
