//! The arguments of `#[aggregate(...)]`.

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{LitStr, Token, Type, Visibility, meta::ParseNestedMeta};

use crate::errors::Errors;

const KEYS: &str = "`name`, `event`, `error`, `commands`, `vis`";

/// What `#[aggregate(...)]` declares; absent keys are reported, not defaulted.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) event: Option<Type>,
    pub(crate) error: Option<Type>,
    /// The `commands` path, for errors about the list as a whole.
    pub(crate) commands_key: Option<syn::Path>,
    pub(crate) commands: Vec<Type>,
    pub(crate) vis: Option<Visibility>,
}

impl Args {
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        let parser = syn::meta::parser(|meta| args.key(&meta, errors));
        if let Err(error) = parser.parse2(tokens) {
            errors.push(error);
        }
        args.report_missing(errors);
        args
    }

    fn key(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let path = &meta.path;
        let repeated = |errors: &mut Errors| errors.spanned(path, "this key is given twice");
        if path.is_ident("name") {
            let name: LitStr = meta.value()?.parse()?;
            if name.value().trim().is_empty() {
                errors.spanned(
                    &name,
                    "the aggregate name is the category of its streams: it cannot be empty",
                );
            } else if let Some((head, tail)) = name.value().split_once('-') {
                // The same rule as `nexus_core`'s runtime check: `-` ends the
                // category in a stream id, so it must not occur inside one.
                let value = name.value();
                errors.spanned(
                    &name,
                    format!(
                        "aggregate name `{value}` contains `-`, which separates the name from the id in \
                         stream ids: entity `1` of `{value}` and entity `{tail}-1` of an aggregate named \
                         `{head}` would share the stream `{value}-1`; use `_` or `.` instead, e.g. `{}`",
                        value.replace('-', "_"),
                    ),
                );
            }
            if self.name.replace(name).is_some() {
                repeated(errors);
            }
        } else if path.is_ident("event") {
            if self.event.replace(meta.value()?.parse()?).is_some() {
                repeated(errors);
            }
        } else if path.is_ident("error") {
            if self.error.replace(meta.value()?.parse()?).is_some() {
                repeated(errors);
            }
        } else if path.is_ident("vis") {
            if self.vis.replace(meta.value()?.parse()?).is_some() {
                repeated(errors);
            }
        } else if path.is_ident("commands") {
            let list;
            syn::parenthesized!(list in meta.input);
            let commands = Punctuated::<Type, Token![,]>::parse_terminated(&list)?;
            if self.commands_key.replace(path.clone()).is_some() {
                repeated(errors);
            }
            self.commands.extend(commands);
        } else {
            let key = path
                .get_ident()
                .map_or_else(|| quote::quote!(#path).to_string(), ToString::to_string);
            errors.spanned(path, format!("unknown key `{key}`; expected one of {KEYS}"));
            skip_value(meta.input)?;
        }
        Ok(())
    }

    fn report_missing(&self, errors: &mut Errors) {
        let call_site = proc_macro2::Span::call_site();
        let mut missing = |what: &str| errors.push(syn::Error::new(call_site, what));
        if self.name.is_none() {
            missing(
                "missing `name = \"...\"`: the aggregate's stream category, stored in every stream id (write it out, so renaming the type never renames stored streams)",
            );
        }
        if self.event.is_none() {
            missing("missing `event = EventType`: the enum of events this aggregate records");
        }
        if self.error.is_none() {
            missing("missing `error = ErrorType`: the error its handlers reject commands with");
        }
        if self.commands_key.is_none() {
            missing(
                "missing `commands(...)`: the command types this aggregate accepts, e.g. `commands(Deposit, Withdraw)`",
            );
        }
    }
}

/// Consumes the value of an unknown key so the keys after it are still read.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<syn::Expr>()?;
    } else if input.peek(syn::token::Paren) {
        let inner;
        syn::parenthesized!(inner in input);
        inner.parse::<TokenStream>()?;
    }
    Ok(())
}
