//! Expansion snapshots: what users get, pretty-printed as `cargo expand` shows
//! it. A change to the generated code changes a reviewed snapshot file.

use proc_macro2::TokenStream;
use quote::quote;

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

/// Snapshots the input followed by its expansion, so a reviewer reads both
/// in one file.
fn snapshot(name: &str, input: TokenStream, expansion: &str) {
    let both = format!("{}\n// ---- expands to ----\n\n{expansion}", pretty(input));
    insta::with_settings!({ omit_expression => true }, {
        insta::assert_snapshot!(name, both);
    });
}

fn aggregate(name: &str, args: &TokenStream, item: &TokenStream) {
    let expansion = pretty(crate::aggregate::expand(args.clone(), item));
    snapshot(name, quote!(#[aggregate(#args)] #item), &expansion);
}

fn domain_event(name: &str, input: &TokenStream) {
    let expansion = pretty(crate::domain_event::expand(input.clone()));
    snapshot(name, quote!(#[derive(DomainEvent)] #input), &expansion);
}

/// The aggregate `nexus_core::guide` shows beside its expansion.
fn guide_wallet() -> (TokenStream, TokenStream) {
    let args = quote!(
        name = "wallet",
        event = WalletEvent,
        error = WalletError,
        commands(Deposit, Withdraw, Balance)
    );
    let item = quote! {
        impl Wallet {
            #[handle]
            fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, WalletError> {
                Ok(Effect::persist(WalletEvent::Deposited { amount: command.amount })
                    .then_reply(|wallet: &Self| wallet.balance))
            }

            #[handle]
            fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
                if command.amount > self.balance {
                    return Err(WalletError::InsufficientFunds {
                        balance: self.balance,
                        requested: command.amount,
                    });
                }
                Ok(Effect::persist(WalletEvent::Withdrawn { amount: command.amount }))
            }

            /// A read-only query: persists nothing, replies the balance.
            #[handle]
            fn balance(&self, _: &Balance) -> Result<Effect<Self, i64>, WalletError> {
                Ok(Effect::none().then_reply(|wallet: &Self| wallet.balance))
            }

            #[apply]
            fn apply(&mut self, event: &WalletEvent) {
                match event {
                    WalletEvent::Deposited { amount } => self.balance += amount,
                    WalletEvent::Withdrawn { amount } => self.balance -= amount,
                }
            }
        }
    };
    (args, item)
}

/// The event enum `nexus_core::guide` shows beside its expansion.
fn guide_wallet_event() -> TokenStream {
    quote! {
        #[event(prefix = "wallet")]
        pub enum WalletEvent {
            Deposited { amount: i64 },
            #[event(name = "wallet.withdrew", version = 2)]
            Withdrawn { amount: i64 },
        }
    }
}

#[test]
fn wallet_aggregate() {
    let (args, item) = guide_wallet();
    aggregate("wallet_aggregate", &args, &item);
}

#[test]
fn wallet_event() {
    domain_event("wallet_event", &guide_wallet_event());
}

/// The guide's code, with the `//!` of its lines, all whitespace and the
/// trailing commas removed (the guide is laid out by rustfmt, the snapshots
/// by prettyplease).
fn guide_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../nexus-core/src/guide.rs");
    let source = std::fs::read_to_string(path).expect("nexus-core/src/guide.rs is readable");
    source
        .lines()
        .map(|line| line.trim_start().strip_prefix("//!").unwrap_or(line))
        .flat_map(str::split_whitespace)
        .collect::<String>()
        .replace(",)", ")")
        .replace(",}", "}")
        .replace(",]", "]")
}

#[test]
fn the_guide_shows_the_current_input_and_expansion() {
    // The guide compiles both blocks as doctests; this keeps them equal to
    // what the macros really take and generate.
    let guide = guide_text();
    let (args, item) = guide_wallet();
    let event = guide_wallet_event();
    let blocks = [
        pretty(quote!(#[aggregate(#args)] #item)),
        pretty(crate::aggregate::expand(args, &item)),
        pretty(
            quote!(#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)] #event),
        ),
        pretty(crate::domain_event::expand(event)),
    ];
    for block in blocks {
        let compact = block
            .split_whitespace()
            .collect::<String>()
            .replace(",)", ")")
            .replace(",}", "}")
            .replace(",]", "]");
        assert!(
            guide.contains(&compact),
            "nexus-core/src/guide.rs does not show this block verbatim:\n{block}"
        );
    }
}

#[test]
fn restricted_visibility_and_path_commands() {
    aggregate(
        "restricted_visibility_and_path_commands",
        &quote!(name = "seat", event = SeatEvent, error = SeatError, commands(seat::Reserve, Release), vis = pub(crate)),
        &quote! {
            impl Seat {
                #[handle]
                fn reserve(&self, command: &seat::Reserve) -> Result<Effect<Self, ()>, SeatError> {
                    Ok(Effect::persist(SeatEvent::Reserved(command.buyer.clone())))
                }

                #[handle]
                fn release(&self, _: &Release) -> Result<Effect<Self>, SeatError> {
                    Ok(Effect::persist(SeatEvent::Released))
                }

                #[apply]
                fn evolve(&mut self, event: &SeatEvent) {
                    self.holder = match event {
                        SeatEvent::Reserved(buyer) => Some(buyer.clone()),
                        SeatEvent::Released => None,
                    };
                }
            }
        },
    );
}

#[test]
fn misuse_keeps_the_closest_valid_output() {
    // `Release` has no handler and `withdraw` takes `&mut self`: both are
    // reported, and the enum and the `Aggregate` impl are still there (with
    // unreachable arms), so the rest of the user's crate type-checks.
    aggregate(
        "misuse_keeps_the_closest_valid_output",
        &quote!(
            name = "seat",
            event = SeatEvent,
            error = SeatError,
            commands(Reserve, Release)
        ),
        &quote! {
            impl Seat {
                #[handle]
                fn reserve(&mut self, command: &Reserve) -> Result<Effect<Self>, SeatError> {
                    Ok(Effect::none())
                }

                #[apply]
                fn apply(&mut self, event: &SeatEvent) {}
            }
        },
    );
}

#[test]
fn event_enum_with_prefix_overrides_and_versions() {
    domain_event(
        "event_enum_with_prefix_overrides_and_versions",
        &quote! {
            #[event(prefix = "order")]
            enum OrderEvent {
                Placed { lines: u32 },
                #[event(version = 2)]
                Paid(i64),
                #[event(name = "order.dispatched")]
                Shipped,
            }
        },
    );
}

#[test]
fn event_enum_with_generics_and_required_names() {
    domain_event(
        "event_enum_with_generics_and_required_names",
        &quote! {
            #[event(require_names)]
            enum Audited<T: Clone> {
                #[event(name = "audit.recorded", version = 4)]
                Recorded(T),
            }
        },
    );
}

#[test]
fn a_handler_taking_the_context_and_commands_sharing_a_last_segment() {
    // `inbound::Ship` and `outbound::Ship` get variants named after their
    // paths; `unload` takes the context, so its impl also overrides
    // `handle_in`, which the runtime calls.
    aggregate(
        "a_handler_taking_the_context_and_commands_sharing_a_last_segment",
        &quote!(
            name = "dock",
            event = DockEvent,
            error = DockError,
            commands(inbound::Ship, outbound::Ship)
        ),
        &quote! {
            impl Dock {
                #[handle]
                fn unload(
                    &self,
                    command: &inbound::Ship,
                    context: &CommandContext,
                ) -> Result<Effect<Self, u64>, DockError> {
                    let after = context.version() + 1;
                    Ok(Effect::persist(DockEvent::Unloaded).then_reply(move |_: &Self| after))
                }

                #[handle]
                fn load(&self, command: &outbound::Ship) -> Result<Effect<Self>, DockError> {
                    Ok(Effect::persist(DockEvent::Loaded))
                }

                #[apply]
                fn apply(&mut self, event: &DockEvent) {}
            }
        },
    );
}
