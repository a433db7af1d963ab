//! Tokens for a validated aggregate: enum, conversions, seals, handlers, dispatch.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};

use super::model::{Aggregate, Command};

/// Everything `#[aggregate]` adds beside the user's impl block.
pub(crate) fn generate(aggregate: &Aggregate) -> TokenStream {
    let command_enum = command_enum(aggregate);
    let per_command = aggregate.commands.iter().map(|command| {
        let conversion = conversion(aggregate, command);
        let seal = seal(aggregate, command);
        let handles = handles(aggregate, command);
        quote!(#conversion #seal #handles)
    });
    let aggregate_impl = aggregate_impl(aggregate);
    let remote_impl = remote_impl(aggregate);
    quote! {
        #command_enum
        #(#per_command)*
        #aggregate_impl
        #remote_impl
    }
}

/// The tokens as a user writes them in a doc comment: `seat::Reserve`, not
/// `seat :: Reserve`.
fn text(tokens: impl ToTokens) -> String {
    tokens.to_token_stream().to_string().replace(" :: ", "::")
}

fn command_enum(aggregate: &Aggregate) -> TokenStream {
    let Aggregate {
        vis,
        command_enum,
        state,
        ..
    } = aggregate;
    let doc = format!(
        " Every command of `{}`, one variant per type in its `#[aggregate(commands(...))]`.",
        text(state)
    );
    let variants = aggregate
        .commands
        .iter()
        .map(|Command { ty, variant, .. }| {
            let doc = format!(" A `{}` command.", text(ty));
            quote! {
                #[doc = #doc]
                #variant(#ty),
            }
        });
    quote! {
        #[doc = #doc]
        ///
        /// Sealed: it converts from exactly these commands (`From`), and the
        /// aggregate's `handle` matches every variant, with no wildcard.
        // `Debug` so that a refused `tell`, which hands the command back, can
        // be unwrapped and logged: commands are messages and must be `Debug`.
        #[derive(::core::fmt::Debug)]
        #vis enum #command_enum {
            #(#variants)*
        }
    }
}

fn conversion(aggregate: &Aggregate, command: &Command) -> TokenStream {
    let Aggregate { command_enum, .. } = aggregate;
    let Command { ty, variant, .. } = command;
    quote! {
        #[automatically_derived]
        impl ::core::convert::From<#ty> for #command_enum {
            #[inline]
            fn from(command: #ty) -> Self {
                Self::#variant(command)
            }
        }
    }
}

fn seal(aggregate: &Aggregate, command: &Command) -> TokenStream {
    let state = &aggregate.state;
    let ty = &command.ty;
    let doc = format!(" `{}` is a command of `{}`.", text(ty), text(state));
    quote! {
        #[automatically_derived]
        impl ::nexus_core::__private::Sealed<#state> for #ty {}

        #[doc = #doc]
        #[automatically_derived]
        impl ::nexus_core::CommandOf<#state> for #ty {}
    }
}

fn handles(aggregate: &Aggregate, command: &Command) -> TokenStream {
    let Some(handler) = &command.handler else {
        return TokenStream::new();
    };
    let state = &aggregate.state;
    let ty = &command.ty;
    let reply = &handler.reply;
    let method = &handler.method;
    let doc = format!(
        " `{}` is handled by `{}::{}`.",
        text(ty),
        text(state),
        method
    );
    let (call, call_in) = if handler.stub {
        // Only reached when an error was reported for this handler.
        (quote!(::core::unreachable!()), None)
    } else if handler.takes_context {
        // Spanned at the handler's return type: a mismatch (another error
        // type) points there rather than at the attribute.
        (
            quote_spanned!(handler.output_span=>
                Self::#method(self, command, &::nexus_core::CommandContext::at(0))),
            Some(quote_spanned!(handler.output_span=> Self::#method(self, command, context))),
        )
    } else {
        (
            quote_spanned!(handler.output_span=> Self::#method(self, command)),
            None,
        )
    };
    let handle_in = call_in.map(|call_in| {
        quote! {
            #[inline]
            fn handle_in(
                &self,
                command: &#ty,
                context: &::nexus_core::CommandContext,
            ) -> ::core::result::Result<
                ::nexus_core::Effect<Self, Self::Reply>,
                <Self as ::nexus_core::Aggregate>::Error,
            > {
                #call_in
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[automatically_derived]
        impl ::nexus_core::Handles<#ty> for #state {
            type Reply = #reply;

            #[inline]
            fn handle_command(
                &self,
                command: &#ty,
            ) -> ::core::result::Result<
                ::nexus_core::Effect<Self, Self::Reply>,
                <Self as ::nexus_core::Aggregate>::Error,
            > {
                #call
            }
            #handle_in
        }
    }
}

fn aggregate_impl(aggregate: &Aggregate) -> TokenStream {
    let Aggregate {
        state,
        name,
        event,
        error,
        command_enum,
        ..
    } = aggregate;
    let arms = aggregate.commands.iter().map(
        |Command {
             ty,
             variant,
             handler,
         }| {
            let decide = if handler.is_some() {
                quote! {
                    <Self as ::nexus_core::Handles<#ty>>::handle_command(self, command)
                        .map(::nexus_core::Effect::discard_reply)
                }
            } else {
                // Only reached when an error was reported for this command.
                quote!(::core::unreachable!())
            };
            quote!(#command_enum::#variant(command) => #decide,)
        },
    );
    let apply = aggregate.apply.as_ref().map_or_else(
        // Only reached when an error was reported for `#[apply]`.
        || quote!(::core::unreachable!()),
        |method| quote!(Self::#method(self, event)),
    );
    let doc = format!(
        " `{}` as an aggregate: its stream category is `{}`.",
        text(state),
        name.value()
    );
    quote! {
        #[doc = #doc]
        #[automatically_derived]
        impl ::nexus_core::Aggregate for #state {
            const NAME: &'static str = #name;
            type Command = #command_enum;
            type Event = #event;
            type Error = #error;

            fn handle(
                &self,
                command: &Self::Command,
            ) -> ::core::result::Result<::nexus_core::Effect<Self>, Self::Error> {
                match command {
                    #(#arms)*
                }
            }

            #[inline]
            fn apply(&mut self, event: &Self::Event) {
                #apply
            }
        }
    }
}

/// `RemoteCommands<Codec>` for every codec that encodes every command, reply
/// and the error: nothing is checked until the aggregate is used in a
/// cluster, so aggregates of non-serde commands compile as before. Left out
/// when a command has no handler (that error is reported): its reply type
/// is unknown.
fn remote_impl(aggregate: &Aggregate) -> Option<TokenStream> {
    let Aggregate { state, .. } = aggregate;
    if aggregate.commands.iter().any(|c| c.handler.is_none()) {
        return None;
    }
    let codec = quote!(NexusCodec);
    let payload = quote!(::nexus_core::codec::PayloadCodec);
    let private = quote!(::nexus_core::__private::remote);
    // Spanned at each command in `commands(...)`: when it is not a serde
    // type, the compiler's "required by this bound" note points there.
    let bounds = aggregate.commands.iter().map(|Command { ty, .. }| {
        let span = syn::spanned::Spanned::span(ty);
        quote_spanned! {span=>
            #codec: ::nexus_core::codec::PayloadCodec<#ty>,
            #codec: ::nexus_core::codec::PayloadCodec<<#state as ::nexus_core::Handles<#ty>>::Reply>,
        }
    });
    let tag = |variant: &syn::Ident| variant.to_string();
    let encodes = aggregate
        .commands
        .iter()
        .map(|Command { ty, variant, .. }| {
            let tag = tag(variant);
            quote!(#private::encode::<#codec, #ty>(codec, #tag, command))
        });
    let serves = aggregate
        .commands
        .iter()
        .map(|Command { ty, variant, .. }| {
            let tag = tag(variant);
            quote!(#tag => #private::serve::<Self, #ty, #codec>(codec, wire, entity, options),)
        });
    let decodes = aggregate
        .commands
        .iter()
        .map(|Command { ty, variant, .. }| {
            let tag = tag(variant);
            quote!(#tag => #private::decode_reply::<Self, #ty, #codec>(codec, tag, bytes),)
        });
    let doc = format!(
        " `{}`'s commands cross the wire with any codec that encodes all of them, their replies and the error: `Json` or `Bincode` when they are serde types.",
        text(state)
    );
    let name = quote!(<#codec as ::nexus_core::codec::Codec>::name(codec));
    Some(quote! {
        #[doc = #doc]
        #[automatically_derived]
        impl<#codec: ::nexus_core::codec::Codec> ::nexus_core::remote::RemoteCommands<#codec> for #state
        where
            #(#bounds)*
            #codec: #payload<<#state as ::nexus_core::Aggregate>::Error>,
        {
            fn encode_command(
                codec: &#codec,
                command: &(dyn ::core::any::Any + ::core::marker::Send),
            ) -> ::core::result::Result<::nexus_core::remote::WireCommand, ::nexus_core::CodecError> {
                ::core::option::Option::None
                    #(.or_else(|| #encodes))*
                    .unwrap_or_else(|| ::core::result::Result::Err(#private::not_a_command::<Self>(#name)))
            }

            fn serve<'a>(
                codec: &'a #codec,
                wire: &'a ::nexus_core::remote::WireCommand,
                entity: &'a ::nexus_core::EntityRef<Self>,
                options: ::nexus_core::CommandOptions,
            ) -> #private::Served<'a, Self> {
                match wire.tag.as_str() {
                    #(#serves)*
                    _ => #private::serve_unknown::<Self>(#name, wire, entity),
                }
            }

            fn decode_reply(
                codec: &#codec,
                tag: &str,
                bytes: &[u8],
            ) -> ::core::result::Result<
                ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>,
                ::nexus_core::CodecError,
            > {
                match tag {
                    #(#decodes)*
                    _ => ::core::result::Result::Err(#private::unknown_tag::<Self>(#name, tag)),
                }
            }

            fn error_to_wire(
                codec: &#codec,
                error: ::nexus_core::EntityError<<Self as ::nexus_core::Aggregate>::Error>,
            ) -> ::nexus_core::remote::WireEntityError {
                ::nexus_core::remote::to_wire(error, codec)
            }

            fn error_from_wire(
                codec: &#codec,
                wire: ::nexus_core::remote::WireEntityError,
            ) -> ::nexus_core::EntityError<<Self as ::nexus_core::Aggregate>::Error> {
                ::nexus_core::remote::from_wire(wire, codec)
            }
        }
    })
}
