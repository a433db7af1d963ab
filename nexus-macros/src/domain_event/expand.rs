//! Tokens for the `DomainEvent` impl of a validated event enum.

use proc_macro2::TokenStream;
use quote::quote;

use super::model::{Events, Shape, Variant};

pub(crate) fn generate(events: &Events) -> TokenStream {
    let ident = &events.ident;
    let (impl_generics, ty_generics, where_clause) = events.generics.split_for_impl();
    let names = events.variants.iter().map(|v| &v.name);
    let event_type = if events.is_enum {
        let arms = events.variants.iter().map(
            |Variant {
                 ident, shape, name, ..
             }| {
                let pattern = match shape {
                    Shape::Unit => quote!(Self::#ident),
                    Shape::Tuple => quote!(Self::#ident(..)),
                    Shape::Named => quote!(Self::#ident { .. }),
                };
                quote!(#pattern => #name,)
            },
        );
        quote!(match *self { #(#arms)* })
    } else {
        // Only reached when an error was reported: the input is not an enum.
        quote!(::core::unreachable!())
    };
    let versions = events.variants.iter().map(|Variant { name, version, .. }| {
        let version = proc_macro2::Literal::u32_unsuffixed(*version);
        quote!(#name => #version,)
    });
    let doc = format!(" Stored names and schema versions of `{ident}`'s variants.");
    quote! {
        #[doc = #doc]
        #[automatically_derived]
        impl #impl_generics ::nexus_core::DomainEvent for #ident #ty_generics #where_clause {
            const EVENT_TYPES: &'static [&'static str] = &[#(#names),*];

            fn event_type(&self) -> &'static str {
                #event_type
            }

            fn schema_version_of(event_type: &str) -> u32 {
                match event_type {
                    #(#versions)*
                    // Not a name of this enum: the codec rejects it by name first.
                    _ => 1,
                }
            }
        }
    }
}
