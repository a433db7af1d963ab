//! `#[aggregate]`: the command protocol, its handlers and the exhaustive dispatch.

mod attr;
mod expand;
mod item;
mod model;
mod signature;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

/// Expands `#[aggregate(args)] item`; mistakes become `compile_error!`s beside
/// the closest valid output, so one mistake does not cascade into many.
pub(crate) fn expand(args: TokenStream, item: &TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = attr::Args::parse(args, &mut errors);
    let Some(mut block) = item::impl_block(item, &mut errors) else {
        let errors = errors.into_compile_errors();
        return quote!(#item #errors);
    };
    let model = model::Aggregate::new(args, &mut block, &mut errors);
    let generated = model.as_ref().map(expand::generate);
    let errors = errors.into_compile_errors();
    quote! {
        #block
        #generated
        #errors
    }
}
