//! `#[derive(EventVisitor)]`: exhaustive dispatch over an event enum for
//! projections, as a visitor trait with one required method per variant.

mod expand;
mod model;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands the derive; on mistakes the trait is still emitted for the
/// variants that could be read, beside the `compile_error!`s.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    let mut errors = Errors::default();
    let model = model::Visited::new(&input, &mut errors);
    let generated = expand::generate(&model);
    let errors = errors.into_compile_errors();
    quote!(#generated #errors)
}
