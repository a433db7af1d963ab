//! How wallet events are stored, and how the older shapes are read.
//!
//! Schema version 2 (what this program writes) is one flat JSON object per
//! event, tagged with its variant and with the amount as `amountCents`, so
//! SQL reads it as plainly as the HTTP API names it:
//!
//! ```text
//! wallet.deposited v2   {"type": "Deposited", "amountCents": 2500}
//! wallet.withdrawn v2   {"type": "Withdrawn", "amountCents": 700}
//! ```
//!
//! Version 1, written by earlier releases, nested the amount under the
//! variant (`{"Deposited": {"amount": 2500}}`). Those rows stay as they
//! are: [`codec`] upcasts them when they are read, so a wallet with a
//! history in both shapes replays to one balance.
//!
//! ```
//! use nexus_core::{EventMetadata, RecordedEvent};
//! use nexus_examples::domain::wallet::WalletEvent;
//! use nexus_examples::domain::wallet_format;
//!
//! let codec = wallet_format::codec();
//! let new = codec
//!     .encode(&WalletEvent::Deposited { amount: 2500 }, EventMetadata::new())
//!     .unwrap();
//! assert_eq!(new.schema_version, 2);
//! let stored: serde_json::Value = serde_json::from_slice(&new.payload).unwrap();
//! assert_eq!(stored, serde_json::json!({"type": "Deposited", "amountCents": 2500}));
//!
//! let old = codec
//!     .decode_parts("wallet.deposited", 1, br#"{"Deposited":{"amount":2500}}"#)
//!     .unwrap();
//! assert_eq!(old, WalletEvent::Deposited { amount: 2500 });
//! ```

use nexus_core::codec::{EventCodec, Json, RawEvent, Upcasters};
use serde_json::{Value, json};

use super::wallet::WalletEvent;

/// The JSON codec of wallet events, reading versions 1 and 2.
pub fn codec() -> EventCodec<WalletEvent> {
    EventCodec::new(Json).with_upcasters(upcasters())
}

/// The steps from each older schema version to the current one.
pub fn upcasters() -> Upcasters {
    Upcasters::new()
        .with("wallet.deposited", 1, |raw| flatten_v1(raw, "Deposited"))
        .with("wallet.withdrawn", 1, |raw| flatten_v1(raw, "Withdrawn"))
}

/// `{"<Variant>": {"amount": N}}` (v1) becomes
/// `{"type": "<Variant>", "amountCents": N}` (v2). A v1 payload without an
/// integer amount is an error naming it: nothing is guessed.
fn flatten_v1(raw: RawEvent, variant: &str) -> Result<RawEvent, String> {
    let value: Value = serde_json::from_slice(&raw.payload).map_err(|e| e.to_string())?;
    let amount = value
        .get(variant)
        .and_then(|body| body.get("amount"))
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("the payload {value} has no integer `{variant}.amount`"))?;
    let payload = serde_json::to_vec(&json!({"type": variant, "amountCents": amount}))
        .map_err(|e| e.to_string())?;
    Ok(RawEvent {
        event_type: raw.event_type,
        schema_version: 2,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use nexus_core::EventMetadata;

    use super::*;

    #[test]
    fn both_variants_write_version_2_flat_and_read_back() {
        let codec = codec();
        for (event, tag) in [
            (WalletEvent::Deposited { amount: 5 }, "Deposited"),
            (WalletEvent::Withdrawn { amount: 7 }, "Withdrawn"),
        ] {
            let new = codec.encode(&event, EventMetadata::new()).unwrap();
            assert_eq!(new.schema_version, 2);
            let stored: Value = serde_json::from_slice(&new.payload).unwrap();
            let cents = match event {
                WalletEvent::Deposited { amount } | WalletEvent::Withdrawn { amount } => amount,
            };
            assert_eq!(stored, json!({"type": tag, "amountCents": cents}));
            let back = codec
                .decode_parts(&new.event_type, new.schema_version, &new.payload)
                .unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn version_1_payloads_of_both_variants_upcast() {
        let codec = codec();
        let deposited = codec
            .decode_parts("wallet.deposited", 1, br#"{"Deposited":{"amount":12}}"#)
            .unwrap();
        assert_eq!(deposited, WalletEvent::Deposited { amount: 12 });
        let withdrawn = codec
            .decode_parts("wallet.withdrawn", 1, br#"{"Withdrawn":{"amount":3}}"#)
            .unwrap();
        assert_eq!(withdrawn, WalletEvent::Withdrawn { amount: 3 });
    }

    #[test]
    fn a_malformed_version_1_payload_is_an_error_naming_it() {
        let codec = codec();
        for payload in [
            &br#"{"Deposited":{"cents":12}}"#[..],
            br#"{"Deposited":{"amount":"12"}}"#,
            br#"{"Withdrawn":{"amount":12}}"#,
            b"not json",
        ] {
            let error = codec
                .decode_parts("wallet.deposited", 1, payload)
                .unwrap_err();
            assert!(error.to_string().contains("wallet.deposited"), "{error}");
        }
    }
}
