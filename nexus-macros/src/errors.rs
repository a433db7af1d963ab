//! Collects every mistake in one input, so the user sees them all in one build.

use proc_macro2::TokenStream;
use quote::ToTokens;
use std::fmt::Display;

/// The mistakes found so far; turned into `compile_error!`s beside the output.
#[derive(Default)]
pub(crate) struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records `message`, pointing at `node`.
    pub(crate) fn spanned(&mut self, node: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(node, message));
    }

    /// Records an error made elsewhere (a parse error).
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(error),
            None => self.first = Some(error),
        }
    }

    /// One `compile_error!` per recorded mistake (nothing when there was none).
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.first
            .map(syn::Error::into_compile_error)
            .unwrap_or_default()
    }
}
