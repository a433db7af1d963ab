//! The shapes a `#[handle]` and an `#[apply]` method must have.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Signature, Type};

use crate::errors::Errors;

/// What a `#[handle]` signature says, as far as it could be read.
pub(crate) struct HandlerSig {
    /// The command type, from `command: &Command`.
    pub(crate) command: Option<Type>,
    /// The reply type, from `Result<Effect<Self, Reply>, Error>`.
    pub(crate) reply: Option<Type>,
    /// The error type written there, for the stub when `error = ...` is missing.
    pub(crate) error: Option<Type>,
    /// Where rustc should point when the return type does not match.
    pub(crate) output_span: Span,
    /// Whether the handler takes a third parameter `&CommandContext`.
    pub(crate) takes_context: bool,
    /// Whether every check passed.
    pub(crate) valid: bool,
}

/// Checks `fn name(&self, command: &Command) -> Result<Effect<Self, Reply>, Error>`.
pub(crate) fn handler(sig: &Signature, error: Option<&Type>, errors: &mut Errors) -> HandlerSig {
    let mut ok = true;
    let mut fail = |node: &dyn ToTokens, message: String| {
        ok = false;
        errors.spanned(node.to_token_stream(), message);
    };
    common(
        sig,
        "a handler",
        "it decides from the state in memory; run I/O in a side effect (`Effect::then_run`) or before sending the command",
        &mut fail,
    );

    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.colon_token.is_some() => fail(
            r,
            "a handler borrows the state: write `&self`".into(),
        ),
        Some(FnArg::Receiver(r)) if r.reference.is_none() => fail(
            r,
            "a handler borrows the state: take `&self`, not `self`".into(),
        ),
        Some(FnArg::Receiver(r)) if r.mutability.is_some() => fail(
            r,
            "a handler cannot change the state: take `&self`, return the events in an `Effect`, and change the state in the `#[apply]` method".into(),
        ),
        Some(FnArg::Receiver(_)) => {}
        _ => fail(
            &sig.ident,
            "a handler is a method of the state: `fn name(&self, command: &Command) -> Result<Effect<Self, Reply>, Error>`".into(),
        ),
    }

    let command = if let Some(FnArg::Typed(arg)) = sig.inputs.iter().nth(1) {
        match &*arg.ty {
            Type::Reference(r) if r.mutability.is_none() => Some((*r.elem).clone()),
            Type::Reference(r) => {
                let elem = &r.elem;
                fail(
                    r,
                    format!(
                        "take the command by shared reference: `&{}`",
                        elem.to_token_stream()
                    ),
                );
                Some((**elem).clone())
            }
            other => {
                fail(
                    other,
                    format!(
                        "take the command by reference: `&{}`",
                        other.to_token_stream()
                    ),
                );
                Some(other.clone())
            }
        }
    } else {
        {
            fail(
                &sig.ident,
                "a handler takes the command it handles after `&self`: `fn name(&self, command: &Command)`".into(),
            );
            None
        }
    };
    let takes_context = context_parameter(sig, &mut fail);

    let error_text = error.map_or_else(|| "Error".to_owned(), |e| e.to_token_stream().to_string());
    let shape = format!(
        "a handler returns `Result<Effect<Self, Reply>, {error_text}>`, where `Reply` is what `ask` returns for this command (`Result<Effect<Self>, {error_text}>` replies `()`)"
    );
    let (reply, error) = match &sig.output {
        ReturnType::Type(_, ty) => {
            let parts = reply_and_error(ty);
            if parts.is_none() {
                fail(ty, shape);
            }
            let (reply, error) = parts.unzip();
            (reply, error.flatten())
        }
        ReturnType::Default => {
            fail(&sig.ident, shape);
            (None, None)
        }
    };
    let output_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    HandlerSig {
        command,
        reply,
        error,
        output_span,
        takes_context,
        valid: ok,
    }
}

/// Checks the parameters after the command: an optional
/// `context: &CommandContext`, and nothing else. Whether there is a context.
fn context_parameter(sig: &Signature, fail: &mut impl FnMut(&dyn ToTokens, String)) -> bool {
    let takes_context = match sig.inputs.iter().nth(2) {
        None => false,
        Some(FnArg::Typed(arg)) if is_context(&arg.ty) => true,
        Some(FnArg::Typed(arg)) if names_context(&arg.ty) => {
            fail(
                &arg.ty,
                "take the context by shared reference: `context: &CommandContext`".into(),
            );
            false
        }
        Some(other) => {
            fail(other, "a handler's third parameter, if any, is `context: &CommandContext` (`nexus_core::CommandContext`: the stream version and the command's ids); read everything else from the state or put it in the command".into());
            false
        }
    };
    for extra in sig.inputs.iter().skip(3) {
        fail(extra, "a handler takes `&self`, the command and optionally `context: &CommandContext`: read everything else from the state or put it in the command".into());
    }
    takes_context
}

/// Whether `ty` is `CommandContext`, `&mut CommandContext` or another
/// wrong way to take it: its innermost path ends in that name.
fn names_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => names_context(&reference.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "CommandContext"),
        _ => false,
    }
}

/// Whether `ty` is `&CommandContext` (by any path ending in that name).
fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    matches!(
        &*reference.elem,
        Type::Path(path) if reference.mutability.is_none()
            && path.path.segments.last().is_some_and(|s| s.ident == "CommandContext")
    )
}

/// What an `#[apply]` signature says.
pub(crate) struct ApplySig {
    /// The event type, from `event: &Event`, for the stub when `event = ...` is missing.
    pub(crate) event: Option<Type>,
    /// Whether every check passed.
    pub(crate) valid: bool,
}

/// Checks `fn name(&mut self, event: &Event)`.
pub(crate) fn apply(sig: &Signature, errors: &mut Errors) -> ApplySig {
    let mut ok = true;
    let mut fail = |node: &dyn ToTokens, message: String| {
        ok = false;
        errors.spanned(node.to_token_stream(), message);
    };
    common(
        sig,
        "`#[apply]`",
        "it only evolves the state in memory",
        &mut fail,
    );
    let shape = "`#[apply]` evolves the state by one event: `fn apply(&mut self, event: &Event)`";
    match sig.inputs.first() {
        Some(FnArg::Receiver(r))
            if r.colon_token.is_none() && r.reference.is_some() && r.mutability.is_some() => {}
        Some(FnArg::Receiver(r)) => {
            fail(r, "`#[apply]` changes the state: take `&mut self`".into());
        }
        _ => fail(&sig.ident, shape.into()),
    }
    let event = match sig.inputs.iter().nth(1) {
        Some(FnArg::Typed(arg)) => match &*arg.ty {
            Type::Reference(r) if r.mutability.is_none() => Some((*r.elem).clone()),
            other => {
                fail(
                    other,
                    "take the event by shared reference: `event: &Event`".into(),
                );
                None
            }
        },
        Some(other) => {
            fail(other, shape.into());
            None
        }
        None => {
            fail(&sig.ident, shape.into());
            None
        }
    };
    for extra in sig.inputs.iter().skip(2) {
        fail(
            extra,
            "`#[apply]` takes `&mut self` and the event only".into(),
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        fail(ty, "`#[apply]` returns nothing and cannot fail: an event is a fact, so decide in the handler whether to record it".into());
    }
    ApplySig { event, valid: ok }
}

/// What a handler and `#[apply]` both must not be.
fn common(
    sig: &Signature,
    what: &str,
    why_sync: &str,
    fail: &mut dyn FnMut(&dyn ToTokens, String),
) {
    if let Some(token) = &sig.asyncness {
        fail(token, format!("{what} is synchronous: {why_sync}"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(&sig.generics, format!("{what} cannot be generic"));
    }
}

/// `(Reply, Some(E))` from `Result<Effect<Self, Reply>, E>`, `((), Some(E))`
/// from `Result<Effect<Self>, E>`, and `(Reply, None)` from a one-argument
/// alias such as `crate::Result<Effect<Self, Reply>>`.
fn reply_and_error(ty: &Type) -> Option<(Type, Option<Type>)> {
    let (ok, error) = match generic_types(ty, "Result")?[..] {
        [ok, error] => (ok, Some(error.clone())),
        [ok] => (ok, None),
        _ => return None,
    };
    let reply = match generic_types(ok, "Effect")?[..] {
        [_state] => syn::parse_quote!(()),
        [_state, reply] => reply.clone(),
        _ => return None,
    };
    Some((reply, error))
}

/// The type arguments of `ty` when its last path segment is `name`.
fn generic_types<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if path.qself.is_some() || last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args
        .iter()
        .map(|arg| match arg {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        })
        .collect()
}
