//! The validated model of one aggregate: its protocol matched with its handlers.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::{ToTokens, format_ident};
use syn::{Attribute, Ident, ImplItem, ItemImpl, LitStr, Type, Visibility};

use super::attr::Args;
use super::signature::{self, HandlerSig};
use crate::case::snake_case;
use crate::errors::Errors;

/// An aggregate as `#[aggregate]` understood it.
pub(crate) struct Aggregate {
    /// The state type, `Wallet`.
    pub(crate) state: Type,
    pub(crate) name: LitStr,
    pub(crate) event: Type,
    pub(crate) error: Type,
    pub(crate) vis: Visibility,
    /// `WalletCommand`.
    pub(crate) command_enum: Ident,
    /// In declaration order.
    pub(crate) commands: Vec<Command>,
    /// The `#[apply]` method, when there is a valid one (a stub otherwise).
    pub(crate) apply: Option<Ident>,
}

/// One declared command.
pub(crate) struct Command {
    pub(crate) ty: Type,
    /// The enum variant, the command type's last identifier.
    pub(crate) variant: Ident,
    /// `None` when the handler is missing or its reply type unreadable: an
    /// error was reported and the dispatch arm becomes a stub.
    pub(crate) handler: Option<Handler>,
}

/// A `#[handle]` method whose command and reply type could be read.
pub(crate) struct Handler {
    pub(crate) method: Ident,
    pub(crate) reply: Type,
    pub(crate) output_span: Span,
    /// The method takes `context: &CommandContext` after the command.
    pub(crate) takes_context: bool,
    /// The signature is wrong in another way (an error was reported): the
    /// `Handles` impl is a stub, so uses of the command do not fail again.
    pub(crate) stub: bool,
}

/// The helper attributes `#[aggregate]` reads inside the impl block.
#[derive(Clone, Copy, PartialEq)]
enum Marker {
    Handle,
    Apply,
}

impl Aggregate {
    /// Matches the declared commands with the handlers in `block`, removing the
    /// helper attributes from it. `None` when the event or error type is
    /// unknown, so there is no `Aggregate` impl to generate.
    pub(crate) fn new(args: Args, block: &mut ItemImpl, errors: &mut Errors) -> Option<Self> {
        let state = (*block.self_ty).clone();
        let state_ident = match &state {
            Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.clone()),
            _ => None,
        };
        let Some(state_ident) = state_ident else {
            errors.spanned(
                &state,
                "the aggregate's state must be a named type, e.g. `impl Wallet { ... }`",
            );
            return None;
        };

        let mut commands = declared_commands(&args, errors);
        let mut found = Found::default();
        for item in &mut block.items {
            found.item(item, &state_ident, &args, &mut commands, errors);
        }
        let Found {
            apply,
            apply_seen,
            event_in_apply,
            error_in_handlers,
            unreadable_handler,
        } = found;

        let event_text = args
            .event
            .as_ref()
            .map_or_else(|| "Event".to_owned(), |e| e.to_token_stream().to_string());
        if apply_seen.is_none() {
            errors.spanned(
                &state,
                format!("`{state_ident}` has no `#[apply]` method: add `#[apply] fn apply(&mut self, event: &{event_text}) {{ ... }}`, which evolves the state by one event"),
            );
        }
        if !unreadable_handler {
            commands.report_missing(args.error.as_ref(), errors);
        }

        Some(Self {
            command_enum: format_ident!("{}Command", state_ident),
            state,
            name: args
                .name
                .unwrap_or_else(|| LitStr::new("", Span::call_site())),
            event: args.event.or(event_in_apply)?,
            error: args.error.or(error_in_handlers)?,
            vis: args.vis.unwrap_or_else(|| syn::parse_quote!(pub)),
            commands: commands.list,
            apply,
        })
    }
}

/// What the methods of the impl block hold, read one item at a time.
#[derive(Default)]
struct Found {
    /// The valid `#[apply]` method.
    apply: Option<Ident>,
    /// The first `#[apply]` method, valid or not.
    apply_seen: Option<Ident>,
    // Read from the signatures when the attribute misses `event`/`error`,
    // so the stub `Aggregate` impl still exists (that miss is reported).
    event_in_apply: Option<Type>,
    error_in_handlers: Option<Type>,
    /// A `#[handle]` whose command could not be read: "missing handler"
    /// reports would be guesses, so they are left out.
    unreadable_handler: bool,
}

impl Found {
    fn item(
        &mut self,
        item: &mut ImplItem,
        state_ident: &Ident,
        args: &Args,
        commands: &mut Commands,
        errors: &mut Errors,
    ) {
        let ImplItem::Fn(method) = item else {
            for attr in attrs_of(item) {
                if let Some(marker) = marker(&attr) {
                    let what = if marker == Marker::Handle {
                        "#[handle]"
                    } else {
                        "#[apply]"
                    };
                    errors.spanned(
                        &attr,
                        format!("`{what}` marks a method; remove it from this item"),
                    );
                }
            }
            strip_markers(item);
            return;
        };
        let Some(marker) = take_marker(&mut method.attrs, errors) else {
            return;
        };
        // The macro imposes the signature, so lints that ask to change it
        // (a query that never fails, a handler that ignores the state, a
        // small `Copy` command or event behind `&`) have nothing the user
        // can act on.
        method.attrs.push(match marker {
            Marker::Handle => syn::parse_quote!(#[allow(
                clippy::unnecessary_wraps,
                clippy::unused_self,
                clippy::trivially_copy_pass_by_ref
            )]),
            Marker::Apply => syn::parse_quote!(#[allow(clippy::trivially_copy_pass_by_ref)]),
        });
        let ident = &method.sig.ident;
        match marker {
            Marker::Apply => {
                if let Some(first) = &self.apply_seen {
                    errors.spanned(
                        ident,
                        format!("`{state_ident}` already has the `#[apply]` method `{first}`: one method evolves the state"),
                    );
                    return;
                }
                self.apply_seen = Some(ident.clone());
                let sig = signature::apply(&method.sig, errors);
                if sig.valid {
                    self.apply = Some(ident.clone());
                }
                self.event_in_apply = sig.event;
            }
            Marker::Handle => {
                let sig = signature::handler(&method.sig, args.error.as_ref(), errors);
                if self.error_in_handlers.is_none() {
                    self.error_in_handlers.clone_from(&sig.error);
                }
                match &sig.command {
                    Some(ty) => commands.attach(ident, ty, sig_handler(ident, &sig), errors),
                    None => self.unreadable_handler = true,
                }
            }
        }
    }
}

fn sig_handler(method: &Ident, sig: &HandlerSig) -> Option<Handler> {
    Some(Handler {
        method: method.clone(),
        reply: sig.reply.clone()?,
        output_span: sig.output_span,
        takes_context: sig.takes_context,
        stub: !sig.valid,
    })
}

/// The declared commands, keyed by their whole path as written. A handler
/// may name a command by its last segment alone when no other command
/// shares it.
struct Commands {
    list: Vec<Command>,
    by_key: HashMap<String, usize>,
    /// Last segment → the commands ending in it.
    by_last: HashMap<String, Vec<usize>>,
    /// The method that claimed each command, for duplicate reports.
    claimed: Vec<Option<Ident>>,
    /// Commands a handler may have meant by an ambiguous last segment: that
    /// error is reported, so their missing handlers are not.
    maybe_meant: Vec<bool>,
}

fn declared_commands(args: &Args, errors: &mut Errors) -> Commands {
    let mut commands = Commands {
        list: Vec::new(),
        by_key: HashMap::new(),
        by_last: HashMap::new(),
        claimed: Vec::new(),
        maybe_meant: Vec::new(),
    };
    if let Some(key) = args
        .commands_key
        .as_ref()
        .filter(|_| args.commands.is_empty())
    {
        errors.spanned(
            key,
            "declare at least one command: `commands(Deposit, Withdraw)`",
        );
    }
    for ty in &args.commands {
        let Some(key) = command_key(ty) else {
            errors.spanned(
                ty,
                "a command is a named type, e.g. `Deposit` or `commands::Deposit`",
            );
            continue;
        };
        if commands.by_key.contains_key(&key.path) {
            errors.spanned(
                ty,
                format!("`{}` is declared twice in `commands(...)`", key.path),
            );
            continue;
        }
        let index = commands.list.len();
        commands.by_key.insert(key.path, index);
        commands.by_last.entry(key.last).or_default().push(index);
        commands.list.push(Command {
            ty: ty.clone(),
            variant: key.variant,
            handler: None,
        });
        commands.claimed.push(None);
        commands.maybe_meant.push(false);
    }
    commands.name_shared_variants();
    commands
}

impl Commands {
    /// Commands whose last segments are equal (`inbound::Ship`,
    /// `outbound::Ship`) are two types: each variant is named after the
    /// whole path (`InboundShip`, `OutboundShip`) so that both fit the enum.
    fn name_shared_variants(&mut self) {
        for indexes in self.by_last.values().filter(|indexes| indexes.len() > 1) {
            for &index in indexes {
                let command = &mut self.list[index];
                if let Some(name) = path_variant(&command.ty) {
                    command.variant = name;
                }
            }
        }
    }

    /// The command a handler's parameter type names: by its whole path, or
    /// by a last segment no other command shares.
    fn find(
        &mut self,
        key: &CommandKey,
        ty: &Type,
        method: &Ident,
        errors: &mut Errors,
    ) -> Option<usize> {
        if let Some(&index) = self.by_key.get(&key.path) {
            return Some(index);
        }
        match self.by_last.get(&key.last).map(Vec::as_slice) {
            Some([index]) => Some(*index),
            Some(several) => {
                let paths: Vec<String> = several
                    .iter()
                    .map(|&i| format!("`{}`", text(&self.list[i].ty)))
                    .collect();
                let (last, all) = paths.split_last().expect("two commands or more");
                let both = if all.len() == 1 { "both" } else { "all" };
                errors.spanned(
                    ty,
                    format!(
                        "`{}` is ambiguous: {} and {last} are {both} commands of this aggregate; write the path as in `commands(...)`, e.g. `&{}`",
                        key.path,
                        all.join(", "),
                        paths[0].trim_matches('`'),
                    ),
                );
                for &index in several {
                    self.maybe_meant[index] = true;
                }
                None
            }
            None => {
                errors.spanned(
                    ty,
                    format!("`{}` is not declared in `commands(...)`: add it there to make it a command of this aggregate, or remove `#[handle]` from `{method}`", key.path),
                );
                None
            }
        }
    }

    fn attach(&mut self, method: &Ident, ty: &Type, handler: Option<Handler>, errors: &mut Errors) {
        let Some(key) = command_key(ty) else {
            errors.spanned(ty, "a command is a named type, e.g. `&Deposit`");
            return;
        };
        let Some(index) = self.find(&key, ty, method, errors) else {
            return;
        };
        let key = text(&self.list[index].ty);
        if let Some(first) = &self.claimed[index] {
            errors.spanned(
                ty,
                format!("`{key}` already has a handler, `{first}`: a command has exactly one handler, so remove one of them or make this one take another command"),
            );
            return;
        }
        self.claimed[index] = Some(method.clone());
        self.list[index].handler = handler;
    }

    fn report_missing(&self, error: Option<&Type>, errors: &mut Errors) {
        let error_text =
            error.map_or_else(|| "Error".to_owned(), |e| e.to_token_stream().to_string());
        for ((command, claimed), maybe_meant) in
            self.list.iter().zip(&self.claimed).zip(&self.maybe_meant)
        {
            if claimed.is_none() && !maybe_meant {
                let ty = text(&command.ty);
                let method = snake_case(&command.variant.to_string());
                errors.spanned(
                    &command.ty,
                    format!("`{ty}` is declared in `commands(...)` but has no handler: add `#[handle] fn {method}(&self, command: &{ty}) -> Result<Effect<Self, Reply>, {error_text}>` to this impl block"),
                );
            }
        }
    }
}

/// How a command type is matched: its whole path and its last segment (both
/// with generic arguments, without spaces), and the variant it gets unless
/// another command shares the last segment.
struct CommandKey {
    path: String,
    last: String,
    variant: Ident,
}

fn command_key(ty: &Type) -> Option<CommandKey> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let arguments = &last.arguments;
    Some(CommandKey {
        path: text(ty),
        last: format!("{}{}", last.ident, arguments.to_token_stream()).replace(' ', ""),
        variant: last.ident.clone(),
    })
}

/// `a::b::Ship` → `ABShip`: the segments in upper camel case, joined.
fn path_variant(ty: &Type) -> Option<Ident> {
    let Type::Path(path) = ty else { return None };
    let name: String = path
        .path
        .segments
        .iter()
        .map(|segment| {
            let ident = segment.ident.to_string();
            ident
                .split('_')
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_uppercase().chain(chars).collect::<String>()
                    })
                })
                .collect::<String>()
        })
        .collect();
    Some(Ident::new(&name, syn::spanned::Spanned::span(path)))
}

/// The tokens of `ty` without spaces, as a user reads them in a message.
fn text(ty: &Type) -> String {
    ty.to_token_stream().to_string().replace(' ', "")
}

fn marker(attr: &Attribute) -> Option<Marker> {
    if attr.path().is_ident("handle") {
        Some(Marker::Handle)
    } else if attr.path().is_ident("apply") {
        Some(Marker::Apply)
    } else {
        None
    }
}

/// Removes `#[handle]`/`#[apply]` from a method and says which one it was.
fn take_marker(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<Marker> {
    let mut found = None;
    attrs.retain(|attr| {
        let Some(marker) = marker(attr) else {
            return true;
        };
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            errors.spanned(
                attr,
                "`#[handle]` and `#[apply]` take no arguments: the command or event is the type of the method's second parameter",
            );
        }
        if found.is_some() {
            errors.spanned(attr, "a method is either one `#[handle]` or one `#[apply]`");
        } else {
            found = Some(marker);
        }
        false
    });
    found
}

fn attrs_of(item: &ImplItem) -> Vec<Attribute> {
    match item {
        ImplItem::Const(c) => c.attrs.clone(),
        ImplItem::Type(t) => t.attrs.clone(),
        ImplItem::Macro(m) => m.attrs.clone(),
        _ => Vec::new(),
    }
}

fn strip_markers(item: &mut ImplItem) {
    let attrs = match item {
        ImplItem::Const(c) => &mut c.attrs,
        ImplItem::Type(t) => &mut t.attrs,
        ImplItem::Macro(m) => &mut m.attrs,
        _ => return,
    };
    attrs.retain(|attr| marker(attr).is_none());
}
