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

#[test]
fn wallet_aggregate() {
    aggregate(
        "wallet_aggregate",
        &quote!(
            name = "wallet",
            event = WalletEvent,
            error = WalletError,
            commands(Deposit, Withdraw, Balance)
        ),
        &quote! {
            impl Wallet {
                #[handle]
                fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, WalletError> {
                    Ok(Effect::persist(WalletEvent::Deposited { amount: command.amount })
                        .then_reply(|wallet: &Self| wallet.balance))
                }

                #[handle]
                fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
                    Ok(Effect::persist(WalletEvent::Withdrawn { amount: command.amount }))
                }

                /// A read-only query.
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
        },
    );
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
