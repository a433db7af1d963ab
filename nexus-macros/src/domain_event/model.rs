//! The validated model of an event enum: one stored name and version per variant.

use std::collections::HashMap;

use syn::meta::ParseNestedMeta;
use syn::{Attribute, DeriveInput, Fields, Generics, Ident, LitInt, LitStr, Token};

use crate::case::snake_case;
use crate::errors::Errors;

/// An event enum as the derive understood it.
pub(crate) struct Events {
    pub(crate) ident: Ident,
    pub(crate) generics: Generics,
    pub(crate) variants: Vec<Variant>,
    /// False when the input was not an enum: the impl is a stub.
    pub(crate) is_enum: bool,
}

/// One event: a variant, its stored name and its schema version.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    pub(crate) shape: Shape,
    pub(crate) name: String,
    pub(crate) version: u32,
}

/// How a variant's pattern is written.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    Unit,
    Tuple,
    Named,
}

/// `#[event(...)]` on the enum.
#[derive(Default)]
struct ContainerAttr {
    prefix: Option<LitStr>,
    require_names: bool,
}

/// `#[event(...)]` on a variant.
#[derive(Default)]
struct VariantAttr {
    name: Option<LitStr>,
    version: Option<LitInt>,
}

impl Events {
    pub(crate) fn new(input: &DeriveInput, errors: &mut Errors) -> Self {
        let mut events = Self {
            ident: input.ident.clone(),
            generics: input.generics.clone(),
            variants: Vec::new(),
            is_enum: false,
        };
        let data = match &input.data {
            syn::Data::Enum(data) => data,
            syn::Data::Struct(data) => {
                let (keyword, ident) = (&data.struct_token, &input.ident);
                errors.spanned(
                    quote::quote!(#keyword #ident),
                    format!("`#[derive(DomainEvent)]` goes on the enum of an aggregate's events, one variant per event; `{ident}` is a struct: make it a variant of that enum"),
                );
                return events;
            }
            syn::Data::Union(data) => {
                let (keyword, ident) = (&data.union_token, &input.ident);
                errors.spanned(
                    quote::quote!(#keyword #ident),
                    "`#[derive(DomainEvent)]` goes on the enum of an aggregate's events, not on a union",
                );
                return events;
            }
        };
        events.is_enum = true;
        let container = container_attr(&input.attrs, errors);
        let mut seen: HashMap<String, Ident> = HashMap::new();
        for variant in &data.variants {
            let attr = variant_attr(&variant.attrs, errors);
            let derived = match &container.prefix {
                Some(prefix) => format!(
                    "{}.{}",
                    prefix.value(),
                    snake_case(&variant.ident.to_string())
                ),
                None => snake_case(&variant.ident.to_string()),
            };
            if attr.name.is_none() && container.require_names {
                errors.spanned(
                    &variant.ident,
                    format!(
                        "`{}` has no stored event name, and `{}` requires one (`#[event(require_names)]`): add `#[event(name = \"{derived}\")]`, and never change it once events are stored",
                        variant.ident, input.ident
                    ),
                );
            }
            let name = attr.name.as_ref().map_or(derived, LitStr::value);
            if let Some(first) = seen.get(&name) {
                let span = attr
                    .name
                    .as_ref()
                    .map_or_else(|| variant.ident.span(), LitStr::span);
                errors.push(syn::Error::new(
                    span,
                    format!("the event name `{name}` is already used by `{first}`: every variant needs its own stored name, or old events would decode as the wrong variant; set one with `#[event(name = \"...\")]`"),
                ));
            } else {
                seen.insert(name.clone(), variant.ident.clone());
            }
            let version = attr.version.as_ref().map_or(1, |v| version(v, errors));
            events.variants.push(Variant {
                ident: variant.ident.clone(),
                shape: match variant.fields {
                    Fields::Unit => Shape::Unit,
                    Fields::Unnamed(_) => Shape::Tuple,
                    Fields::Named(_) => Shape::Named,
                },
                name,
                version,
            });
        }
        events
    }
}

fn version(literal: &LitInt, errors: &mut Errors) -> u32 {
    match literal.base10_parse::<u32>() {
        Ok(0) => {
            errors.spanned(literal, "schema versions start at 1");
            1
        }
        Ok(version) => version,
        Err(error) => {
            errors.push(error);
            1
        }
    }
}

fn event_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("event"))
}

/// Reads every `#[event(...)]` key with `key`, which returns `None` for a key
/// it does not know; such keys are reported with `misplaced` (keys of the
/// other position) or as unknown, listing `expected`.
fn read_keys(
    attrs: &[Attribute],
    errors: &mut Errors,
    expected: &str,
    misplaced: (&[&str], &str),
    mut key: impl FnMut(&ParseNestedMeta<'_>, &mut Errors) -> syn::Result<Option<()>>,
) {
    for attr in event_attrs(attrs) {
        let parsed = attr.parse_nested_meta(|meta| {
            if key(&meta, errors)?.is_some() {
                return Ok(());
            }
            let (keys, where_they_go) = misplaced;
            if keys.iter().any(|k| meta.path.is_ident(k)) {
                errors.spanned(&meta.path, where_they_go);
            } else {
                let path = &meta.path;
                let name = quote::quote!(#path).to_string().replace(' ', "");
                errors.spanned(
                    path,
                    format!("unknown key `{name}`; expected one of {expected}"),
                );
            }
            if meta.input.peek(Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            }
            Ok(())
        });
        if let Err(error) = parsed {
            errors.push(error);
        }
    }
}

fn container_attr(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttr {
    let mut out = ContainerAttr::default();
    let misplaced = "`name` and `version` go on a variant: `#[event(name = \"...\", version = 2)]`";
    read_keys(
        attrs,
        errors,
        "`prefix`, `require_names`",
        (&["name", "version"], misplaced),
        |meta, errors| {
            if meta.path.is_ident("prefix") {
                let prefix: LitStr = meta.value()?.parse()?;
                if prefix.value().is_empty() {
                    errors.spanned(&prefix, "an empty prefix: remove `prefix` instead");
                }
                out.prefix = Some(prefix);
            } else if meta.path.is_ident("require_names") {
                out.require_names = true;
            } else {
                return Ok(None);
            }
            Ok(Some(()))
        },
    );
    out
}

fn variant_attr(attrs: &[Attribute], errors: &mut Errors) -> VariantAttr {
    let mut out = VariantAttr::default();
    let misplaced = "`prefix` and `require_names` go on the enum, not on a variant";
    read_keys(
        attrs,
        errors,
        "`name`, `version`",
        (&["prefix", "require_names"], misplaced),
        |meta, errors| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                if name.value().trim().is_empty() {
                    errors.spanned(&name, "an event name cannot be empty");
                }
                if out.name.replace(name).is_some() {
                    errors.spanned(&meta.path, "this key is given twice");
                }
            } else if meta.path.is_ident("version") {
                if out.version.replace(meta.value()?.parse()?).is_some() {
                    errors.spanned(&meta.path, "this key is given twice");
                }
            } else {
                return Ok(None);
            }
            Ok(Some(()))
        },
    );
    out
}
