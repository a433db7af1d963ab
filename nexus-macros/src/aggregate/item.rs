//! The item under `#[aggregate]`: an inherent, non-generic impl block.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ItemImpl;

use crate::errors::Errors;

/// The item under the attribute, when it is an impl block `#[aggregate]` supports.
pub(crate) fn impl_block(item: &TokenStream, errors: &mut Errors) -> Option<ItemImpl> {
    let item: syn::Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let usage = |name: &dyn ToTokens| {
        format!(
            "`#[aggregate]` goes on the inherent impl block of the aggregate's state, `impl {} {{ ... }}`, which holds its `#[handle]` methods and its `#[apply]` method",
            name.to_token_stream()
        )
    };
    let (name, advice) = match &item {
        syn::Item::Impl(block) => {
            if let Some((_, trait_path, _)) = &block.trait_ {
                let self_ty = &block.self_ty;
                errors.spanned(
                    trait_path,
                    format!("{}; it writes the `Aggregate` and `Handles` impls itself, so it does not go on an impl of a trait", usage(self_ty)),
                );
                return None;
            }
            if !block.generics.params.is_empty() {
                errors.spanned(
                    &block.generics,
                    "generic aggregates are not supported: `#[aggregate]` needs one concrete state type",
                );
                return None;
            }
            return Some(block.clone());
        }
        syn::Item::Struct(s) => (
            s.ident.to_token_stream(),
            "; move it from the struct to that impl block",
        ),
        syn::Item::Enum(e) => (
            e.ident.to_token_stream(),
            "; move it from the enum to that impl block",
        ),
        _ => (quote!(State), ", not on this item"),
    };
    let node = item_head(&item).unwrap_or_else(|| item.to_token_stream());
    errors.spanned(node, format!("{}{advice}", usage(&name)));
    None
}

/// The keyword and name of an item, for a short error span.
fn item_head(item: &syn::Item) -> Option<TokenStream> {
    Some(match item {
        syn::Item::Struct(s) => {
            let (t, i) = (&s.struct_token, &s.ident);
            quote!(#t #i)
        }
        syn::Item::Enum(e) => {
            let (t, i) = (&e.enum_token, &e.ident);
            quote!(#t #i)
        }
        syn::Item::Trait(t) => {
            let (k, i) = (&t.trait_token, &t.ident);
            quote!(#k #i)
        }
        syn::Item::Fn(f) => {
            let (k, i) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#k #i)
        }
        syn::Item::Mod(m) => {
            let (k, i) = (&m.mod_token, &m.ident);
            quote!(#k #i)
        }
        _ => return None,
    })
}
