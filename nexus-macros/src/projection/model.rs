//! The validated model of an event enum to visit: its variants and fields.

use syn::{DeriveInput, Fields, Ident, Type, Visibility};

use crate::case::snake_case;
use crate::errors::Errors;

/// An event enum as the derive understood it.
pub(crate) struct Visited {
    pub(crate) ident: Ident,
    pub(crate) vis: Visibility,
    pub(crate) variants: Vec<Variant>,
    /// False when the input was not an enum: the dispatch is a stub.
    pub(crate) is_enum: bool,
}

/// One variant: its identifier, the visitor method named after it and its fields.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    pub(crate) method: Ident,
    pub(crate) fields: VariantFields,
}

/// The fields of a variant, each handed to the visitor by reference.
pub(crate) enum VariantFields {
    Unit,
    /// Tuple fields, bound as `_0`, `_1`, … in the generated method.
    Tuple(Vec<Type>),
    Named(Vec<(Ident, Type)>),
}

impl Visited {
    pub(crate) fn new(input: &DeriveInput, errors: &mut Errors) -> Self {
        let mut visited = Self {
            ident: input.ident.clone(),
            vis: input.vis.clone(),
            variants: Vec::new(),
            is_enum: false,
        };
        let syn::Data::Enum(data) = &input.data else {
            errors.spanned(
                &input.ident,
                format!(
                    "`#[derive(EventVisitor)]` goes on an enum of events, one variant per event; `{}` is not an enum",
                    input.ident
                ),
            );
            return visited;
        };
        if !input.generics.params.is_empty() {
            errors.spanned(
                &input.generics,
                "`#[derive(EventVisitor)]` does not support generic event enums; visit a concrete enum",
            );
        }
        visited.is_enum = true;
        for variant in &data.variants {
            let fields = match &variant.fields {
                Fields::Unit => VariantFields::Unit,
                Fields::Unnamed(fields) => {
                    VariantFields::Tuple(fields.unnamed.iter().map(|f| f.ty.clone()).collect())
                }
                Fields::Named(fields) => VariantFields::Named(
                    fields
                        .named
                        .iter()
                        .map(|f| (f.ident.clone().expect("named field"), f.ty.clone()))
                        .collect(),
                ),
            };
            visited.variants.push(Variant {
                method: Ident::new(
                    &snake_case(&variant.ident.to_string()),
                    variant.ident.span(),
                ),
                ident: variant.ident.clone(),
                fields,
            });
        }
        visited
    }
}
