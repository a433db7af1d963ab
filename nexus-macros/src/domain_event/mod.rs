//! `#[derive(DomainEvent)]`: stable stored names and schema versions per variant.

mod expand;
mod model;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands the derive; on mistakes the impl is still emitted (with the names
/// that could be read) beside the `compile_error!`s, so uses of the event type
/// do not fail a second time.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let mut errors = Errors::default();
    let events = model::Events::new(&input, &mut errors);
    let generated = expand::generate(&events);
    let errors = errors.into_compile_errors();
    quote!(#generated #errors)
}
