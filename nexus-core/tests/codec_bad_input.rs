//! Codecs and recovery refuse bad input with typed errors and guess nothing:
//! unknown event types, payloads that do not decode, schema versions with no
//! way forward.

use std::time::SystemTime;

use nexus_core::codec::{Bincode, EventCodec, Json, RawEvent, Upcasters};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{
    CodecError, DomainEvent, EventMetadata, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, RecoveryError, StreamId, recover,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: i64 },
}

impl DomainEvent for AccountEvent {
    const EVENT_TYPES: &'static [&'static str] = &["account.opened", "account.deposited"];
    fn event_type(&self) -> &'static str {
        match self {
            Self::Opened { .. } => "account.opened",
            Self::Deposited { .. } => "account.deposited",
        }
    }
    fn schema_version_of(event_type: &str) -> u32 {
        if event_type == "account.deposited" {
            2
        } else {
            1
        }
    }
}

fn recorded(event_type: &str, schema_version: u32, payload: &[u8]) -> RecordedEvent {
    RecordedEvent {
        stream_id: StreamId::new("account-1"),
        version: 1,
        position: LogPosition::new(1, 1),
        event_type: event_type.to_owned(),
        schema_version,
        payload: payload.to_vec(),
        metadata: EventMetadata {
            event_id: uuid::Uuid::nil(),
            timestamp: SystemTime::UNIX_EPOCH,
            correlation_id: None,
            causation_id: None,
            headers: std::collections::BTreeMap::new(),
        },
    }
}

fn upcasters() -> Upcasters {
    Upcasters::new()
        // v1 stored the amount in whole units; v2 stores cents.
        .json("account.deposited", 1, |mut value| {
            let units = value["Deposited"]["units"].take().as_i64().unwrap_or(0);
            serde_json::json!({ "Deposited": { "amount": units * 100 } })
        })
        .rename("account.created", 1, "account.opened", 1)
}

#[test]
fn both_codecs_round_trip_with_names_and_versions() {
    for codec in [
        EventCodec::<AccountEvent>::new(Json),
        EventCodec::new(Bincode),
    ] {
        let event = AccountEvent::Deposited { amount: 250 };
        let new = codec.encode(&event, EventMetadata::new()).unwrap();
        assert_eq!(new.event_type, "account.deposited");
        assert_eq!(new.schema_version, 2);
        let back = codec
            .decode(&recorded(&new.event_type, new.schema_version, &new.payload))
            .unwrap();
        assert_eq!(back, event, "{}", codec.format());
    }
}

#[test]
fn an_unknown_event_type_is_a_typed_error_listing_the_known_ones() {
    let codec = EventCodec::<AccountEvent>::new(Json);
    let err = codec
        .decode(&recorded("account.closed", 1, b"{}"))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::UnknownEventType { ref event_type, schema_version: 1, .. } if event_type == "account.closed")
    );
    assert_eq!(
        err.to_string(),
        "unknown event type `account.closed` (schema version 1); known types: account.opened, account.deposited"
    );
}

#[test]
fn a_payload_that_does_not_decode_names_the_type_and_codec() {
    let json = EventCodec::<AccountEvent>::new(Json);
    let err = json
        .decode(&recorded(
            "account.opened",
            1,
            b"{\"Opened\":{\"owner\":5}}",
        ))
        .unwrap_err();
    assert!(
        matches!(err, CodecError::Decode { codec: "json", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot decode `account.opened` with the json codec")
    );

    let bincode = EventCodec::<AccountEvent>::new(Bincode);
    let err = bincode
        .decode(&recorded("account.opened", 1, &[9, 9, 9]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Decode {
                codec: "bincode",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_payload_of_another_variant_than_its_stored_name_is_refused() {
    let codec = EventCodec::<AccountEvent>::new(Json);
    let err = codec
        .decode(&recorded(
            "account.opened",
            1,
            br#"{"Deposited":{"amount":1}}"#,
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("decodes as `account.deposited`"),
        "{err}"
    );
}

#[test]
fn old_shapes_are_upcast_before_decoding() {
    let codec = EventCodec::<AccountEvent>::new(Json).with_upcasters(upcasters());
    let deposited = codec
        .decode(&recorded(
            "account.deposited",
            1,
            br#"{"Deposited":{"units":3}}"#,
        ))
        .unwrap();
    assert_eq!(deposited, AccountEvent::Deposited { amount: 300 });
    let renamed = codec
        .decode(&recorded(
            "account.created",
            1,
            br#"{"Opened":{"owner":"ann"}}"#,
        ))
        .unwrap();
    assert_eq!(
        renamed,
        AccountEvent::Opened {
            owner: "ann".into()
        }
    );
}

#[test]
fn a_schema_version_with_no_way_forward_is_refused() {
    let codec = EventCodec::<AccountEvent>::new(Json);
    let err = codec
        .decode(&recorded(
            "account.deposited",
            1,
            br#"{"Deposited":{"units":3}}"#,
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "event type `account.deposited`: no upcaster from schema version 1 to 2"
    );
    let err = codec
        .decode(&recorded(
            "account.deposited",
            3,
            br#"{"Deposited":{"amount":3}}"#,
        ))
        .unwrap_err();
    assert!(matches!(
        err,
        CodecError::UnsupportedSchemaVersion {
            found: 3,
            current: 2,
            ..
        }
    ));
}

#[test]
fn an_upcaster_that_does_not_move_forward_is_an_error_not_a_loop() {
    let stuck = Upcasters::new().with("account.deposited", 1, Ok);
    let codec = EventCodec::<AccountEvent>::new(Json).with_upcasters(stuck);
    let err = codec
        .decode(&recorded("account.deposited", 1, b"{}"))
        .unwrap_err();
    assert!(matches!(err, CodecError::Upcast { from: 1, .. }), "{err:?}");

    let cycle = Upcasters::new()
        .rename("a", 1, "b", 1)
        .rename("b", 1, "a", 1);
    let codec = EventCodec::<AccountEvent>::new(Json).with_upcasters(cycle);
    let err = codec.decode(&recorded("a", 1, b"{}")).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
    let raw = RawEvent {
        event_type: "a".into(),
        schema_version: 1,
        payload: vec![],
    };
    assert!(Upcasters::new().step(raw).unwrap().is_none());
}

#[tokio::test]
async fn recovery_stops_at_an_undecodable_event_and_names_it() {
    #[derive(Default, Debug)]
    struct Account;
    impl nexus_core::Aggregate for Account {
        const NAME: &'static str = "account";
        type Command = ();
        type Event = AccountEvent;
        type Error = std::convert::Infallible;
        fn handle(&self, (): &()) -> Result<nexus_core::Effect<Self>, Self::Error> {
            Ok(nexus_core::Effect::none())
        }
        fn apply(&mut self, _: &AccountEvent) {}
    }
    let store = InMemoryEventStore::new();
    let codec = EventCodec::<AccountEvent>::new(Json);
    let stream = StreamId::for_entity("account", "1");
    let good = codec
        .encode(
            &AccountEvent::Opened {
                owner: "ann".into(),
            },
            EventMetadata::new(),
        )
        .unwrap();
    let bad = NewEvent::new("account.frozen", 1, b"{}".to_vec());
    store
        .append(&stream, ExpectedVersion::NoStream, &[good, bad])
        .await
        .unwrap();
    let err = recover::<Account>(&stream, &store, &codec, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RecoveryError::Codec { version: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(
        "recovering account-1: event at version 2: unknown event type `account.frozen`"
    ));
    assert_eq!(store.len(), 2, "reading changes nothing");
}
