//! The model of a `#[gen_server]` impl block: parsed, checked, and stripped of the handler
//! attributes. Every model node keeps the user's tokens, so errors (here and from the type checker
//! on generated code) point at them.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{
    Attribute, FnArg, GenericArgument, Generics, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr,
    PatType, PathArguments, ReturnType, Type, parse_quote,
};

use crate::ctxt::Ctxt;

pub(crate) struct Server {
    pub(crate) self_ty: Type,
    /// The server type's name, for naming the generated client.
    pub(crate) ident: Ident,
    /// The impl block's generics. A generic server is refused, but still gets a stub `GenServer`
    /// impl carrying them, so that code using the server type-checks around the one error.
    pub(crate) generics: Generics,
    /// `None` when the block has no `init`. An `init` whose signature is wrong (`ok` false) gives
    /// a stub `__init` that never runs the method, but still names its argument type if it can.
    pub(crate) init: Option<Method>,
    pub(crate) terminate: Option<Method>,
    pub(crate) handlers: Vec<Handler>,
    /// Only the valid ones: an `#[info]` handler with an error is left out of the dispatch.
    pub(crate) infos: Vec<Method>,
    pub(crate) fallback: Option<Method>,
    /// The impl block defines its own `start` or `start_link`, so the generated inherent ones are
    /// left out (the `GenServer` trait still has them).
    pub(crate) own_start: bool,
}

/// One parameter of a user method, in declaration order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// `&mut Context` or `&Context`: the server process's context.
    Context,
    /// `&mut Caller<X>`: who called, and the reply token.
    Caller,
    /// A `Pid` before the body: the calling process (libprocess's `from`).
    From,
    /// The message body (for `terminate`, the exit reason; for a fallback, the body).
    Body,
    /// A fallback's handler name.
    Name,
}

/// What a method returns.
pub(crate) struct Ret {
    /// The reply value: the whole return type, or `X` in `Reply<X>`.
    pub(crate) reply: Type,
    /// Returns `Reply<X>` rather than a plain value.
    pub(crate) flow: bool,
    /// The reply value is a `Result`: `Err` goes to the caller as `CallError::Handler`.
    pub(crate) fallible: bool,
}

pub(crate) struct Method {
    pub(crate) ident: Ident,
    pub(crate) params: Vec<Param>,
    /// The body type, `()` when the method takes none.
    pub(crate) body: Type,
    /// `body` can be named by generated items: the method takes at most one body, neither
    /// borrowed nor `impl Trait`, and is not generic.
    pub(crate) body_known: bool,
    /// The type of a `&mut Caller<X>` parameter, as written: generated code checks it against
    /// the reply type at the user's tokens.
    pub(crate) caller: Option<Type>,
    pub(crate) ret: Ret,
    /// The signature fits the method's role, so generated code calls it. A method with an error
    /// is never called; only stubs refer to its types, so that the error is the only one.
    pub(crate) ok: bool,
    /// The types a client passes, as written, for a stub client method: what the user's code
    /// calls already type-checks while the signature is being fixed.
    pub(crate) values: Vec<Type>,
    /// The method's own generics (an error), copied onto its stub client methods; for a generic
    /// server, also the impl block's generics that its types name.
    pub(crate) generics: Generics,
}

pub(crate) struct Handler {
    /// `None` when the `#[install]` attribute has no usable name (an error).
    pub(crate) name: Option<LitStr>,
    /// Reachable by the typed client only (no serde bounds on its types).
    pub(crate) local: bool,
    pub(crate) method: Method,
    /// Dispatched to: its method and attribute are valid and its name is unique. A handler that
    /// is not live only gets stub client methods.
    pub(crate) live: bool,
    /// Gets client methods: false when they would duplicate another handler's.
    pub(crate) client: bool,
}

impl Handler {
    /// The name to show in docs: the installed name, or the method's when it has none.
    pub(crate) fn display_name(&self) -> String {
        self.name
            .as_ref()
            .map_or_else(|| self.method.ident.to_string(), LitStr::value)
    }
}

/// Methods `ServerRef` and `NamedRef` have themselves (or through their traits); a handler with
/// one of these names would be shadowed, so it is refused.
const RESERVED: &[&str] = &[
    "pid",
    "lookup",
    "from_pid",
    "named",
    "registered_name",
    "stop",
    "stop_timeout",
    "call",
    "cast",
    "clone",
    "eq",
    "ne",
    "hash",
    "fmt",
    "deref",
];

enum Role {
    Install { name: Option<LitStr>, local: bool },
    Info,
    Fallback,
}

/// Parses and checks `item`, removing the handler attributes from it. Every problem is reported
/// to `cx`; `None` when the block cannot be modelled at all (not an inherent impl of a named
/// type). Otherwise the model keeps whatever did parse, with the parts in error marked, so that
/// generation can emit stubs for them and the user sees only the errors reported here.
pub(crate) fn parse(cx: &Ctxt, item: &mut ItemImpl) -> Option<Server> {
    if let Some((path, _)) = &item.trait_ {
        cx.error(path, "#[gen_server] goes on an inherent impl block (`impl MyServer { ... }`), not on a trait impl");
        return None;
    }
    let generic = !item.generics.params.is_empty();
    if generic {
        cx.error(
            &item.generics,
            "generic gen_servers are not supported; implement the server for a concrete type, \
             or wrap the generic type in a concrete struct",
        );
    }
    let ident = match &*item.self_ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last()?.ident.clone(),
        other => {
            cx.error(
                other,
                "#[gen_server] needs a named type: `impl MyServer { ... }`",
            );
            return None;
        }
    };

    let mut init = None;
    let mut terminate = None;
    let mut handlers: Vec<Handler> = Vec::new();
    let mut infos: Vec<Method> = Vec::new();
    let mut fallback: Option<Method> = None;
    let mut own_start = false;
    for impl_item in &mut item.items {
        let ImplItem::Fn(function) = impl_item else {
            continue;
        };
        let role = take_role(cx, &mut function.attrs, &function.sig.ident);
        let name = function.sig.ident.to_string();
        own_start |= name == "start" || name == "start_link";
        match role {
            Some((Role::Install { name, local }, attr_ok)) => {
                let method = method(cx, function, Kind::Handler);
                handlers.push(Handler {
                    live: attr_ok && method.ok && name.is_some(),
                    client: true,
                    name,
                    local,
                    method,
                });
            }
            Some((Role::Info, attr_ok)) => {
                let method = method(cx, function, Kind::Info);
                if attr_ok && method.ok {
                    infos.push(method);
                }
            }
            Some((Role::Fallback, attr_ok)) => {
                if fallback.is_some() {
                    cx.error(
                        &function.sig.ident,
                        "a gen_server has at most one #[fallback] handler; remove this one or merge it into the first",
                    );
                } else {
                    let mut method = method(cx, function, Kind::Fallback);
                    method.ok &= attr_ok;
                    fallback = Some(method);
                }
            }
            None if name == "init" => init = Some(method(cx, function, Kind::Init)),
            None if name == "terminate" => terminate = Some(method(cx, function, Kind::Terminate)),
            None => {}
        }
    }

    if init.is_none() {
        cx.error(
            &item.self_ty,
            "a #[gen_server] needs an `init` that builds the server: \
             add `async fn init(arg: A) -> Result<Self, E>` (or `-> Self`) to this impl block",
        );
    }
    check_names(cx, &mut handlers);
    check_info_types(cx, &mut infos);
    if generic {
        // Nothing is dispatched: the generated dispatch lives outside the impl's generics. The
        // stub client methods of the handlers whose types name them take them as their own, so
        // that `server.push(1)` infers them.
        for handler in &mut handlers {
            handler.live = false;
            if names_generics(&handler.method, &item.generics) {
                handler.method.generics = merge(&item.generics, &handler.method.generics);
            }
        }
        infos.clear();
        fallback = None;
        terminate = None;
        if let Some(init) = &mut init {
            init.ok = false;
        }
    }
    Some(Server {
        self_ty: (*item.self_ty).clone(),
        ident,
        generics: item.generics.clone(),
        init,
        terminate,
        handlers,
        infos,
        fallback,
        own_start,
    })
}

/// Removes this crate's attributes from a method and says which role they give it, and whether
/// its attribute is free of errors.
fn take_role(cx: &Ctxt, attrs: &mut Vec<Attribute>, method: &Ident) -> Option<(Role, bool)> {
    let mut role = None;
    let mut first: Option<Attribute> = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let Some(last) = attr.path().segments.last() else {
            kept.push(attr);
            continue;
        };
        let parsed = match last.ident.to_string().as_str() {
            "install" => parse_install(cx, &attr, method),
            "info" => (Role::Info, no_args(cx, &attr, "info")),
            "fallback" => (Role::Fallback, no_args(cx, &attr, "fallback")),
            _ => {
                kept.push(attr);
                continue;
            }
        };
        if let Some(first) = &first {
            cx.error(
                &attr,
                format!(
                    "a method has one role: #[install], #[info] or #[fallback]; this method already \
                     has `{}`, so remove one of them",
                    pretty(first)
                ),
            );
            if let Some((_, ok)) = &mut role {
                *ok = false;
            }
        } else {
            first = Some(attr);
            role = Some(parsed);
        }
    }
    *attrs = kept;
    role
}

fn no_args(cx: &Ctxt, attr: &Attribute, name: &str) -> bool {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        true
    } else {
        cx.error(
            attr,
            format!("#[{name}] takes no arguments: write `#[{name}]`"),
        );
        false
    }
}

/// An `#[install]` attribute: its role (with the name if it has a usable one) and whether it is
/// free of errors.
fn parse_install(cx: &Ctxt, attr: &Attribute, method: &Ident) -> (Role, bool) {
    let usage = format!("name the handler with a string: `#[install(\"{method}\")]`");
    let syn::Meta::List(list) = &attr.meta else {
        cx.error(attr, &usage);
        return (
            Role::Install {
                name: None,
                local: false,
            },
            false,
        );
    };
    // `#[install(ping)]` most likely means "ping".
    let usage = match list.tokens.clone().into_iter().next() {
        Some(proc_macro2::TokenTree::Ident(word)) => {
            format!("name the handler with a string: `#[install(\"{word}\")]`")
        }
        _ => usage,
    };
    let mut ok = true;
    // The name, then any options, each error reported where it is: a misspelt option still
    // leaves the name usable for the stub.
    let parsed = list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        let name: syn::Lit = input.parse()?;
        let mut local = false;
        while input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let option: syn::Meta = input.parse()?;
            match &option {
                syn::Meta::Path(path) if path.is_ident("local") => {
                    if local {
                        cx.error(path, "`local` is given twice; remove one");
                        ok = false;
                    }
                    local = true;
                }
                _ => {
                    let usage = format!("#[install({}, local)]", pretty(&name));
                    let hint = match option.path().get_ident() {
                        Some(ident) if is_near(&ident.to_string(), "local") => {
                            format!("unknown option `{ident}`; did you mean `local`? `{usage}`")
                        }
                        _ => format!(
                            "unknown option `{}`: the only option is `local`, for a handler \
                             reached by the typed client only: `{usage}`",
                            pretty(&option)
                        ),
                    };
                    cx.error(&option, hint);
                    ok = false;
                }
            }
        }
        Ok((name, local))
    });
    match parsed {
        Ok((syn::Lit::Str(name), local)) if !name.value().is_empty() => (
            Role::Install {
                name: Some(name),
                local,
            },
            ok,
        ),
        Ok((syn::Lit::Str(name), local)) => {
            cx.error(
                name,
                format!("a handler name cannot be empty: `#[install(\"{method}\")]`"),
            );
            (Role::Install { name: None, local }, false)
        }
        Ok((other, local)) => {
            cx.error(other, &usage);
            (Role::Install { name: None, local }, false)
        }
        Err(error) => {
            let mut error = error;
            if error.to_string().starts_with("expected literal") {
                error = syn::Error::new(error.span(), &usage);
            }
            cx.push(error);
            (
                Role::Install {
                    name: None,
                    local: false,
                },
                false,
            )
        }
    }
}

/// One edit (or a swap of neighbours) away: a likely misspelling.
fn is_near(word: &str, target: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (word.chars().collect(), target.chars().collect());
    match a.len() as isize - b.len() as isize {
        0 => {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            match diff.as_slice() {
                [_] => true,
                [i, j] => *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i],
                _ => false,
            }
        }
        1 => (0..a.len()).any(|i| a[..i] == b[..i] && a[i + 1..] == b[i..]),
        -1 => (0..b.len()).any(|i| b[..i] == a[..i] && b[i + 1..] == a[i..]),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Terminate,
    Handler,
    Info,
    Fallback,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Terminate => "terminate",
            Kind::Handler => "#[install]",
            Kind::Info => "#[info]",
            Kind::Fallback => "#[fallback]",
        }
    }
}

/// Reads one method's signature for its role, reporting what does not fit. The method comes back
/// even when something does not fit, marked `ok: false`, with as much of it as could be read.
fn method(cx: &Ctxt, function: &ImplItemFn, kind: Kind) -> Method {
    let sig = &function.sig;
    let what = kind.attr();
    let mut ok = true;
    if sig.asyncness.is_none() {
        cx.error(
            sig.fn_token,
            format!("{what} must be an `async fn`: add `async` before `fn`"),
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        cx.error(
            &sig.generics,
            format!("{what} cannot be generic: the server dispatches to it by a fixed type"),
        );
        ok = false;
    }
    match (kind, sig.receiver()) {
        (Kind::Init, Some(receiver)) => {
            cx.error(receiver, "init builds the server, so it takes no `self`: `async fn init(arg: A) -> Result<Self, E>`");
            ok = false;
        }
        (Kind::Init, None) => {}
        (_, None) => {
            cx.error(
                &sig.ident,
                format!("{what} is a method of the server: add `&mut self` as its first parameter"),
            );
            ok = false;
        }
        (_, Some(receiver)) if !matches!(receiver.kind, syn::ReceiverKind::Reference(..)) => {
            cx.error(
                receiver,
                format!("{what} takes the server by reference: use `&mut self`"),
            );
            ok = false;
        }
        _ => {}
    }

    let mut params = Vec::new();
    let mut caller = None;
    // The parameters that carry values (not the context or the caller).
    let mut values: Vec<&PatType> = Vec::new();
    let mut body_known = sig.generics.params.is_empty();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let ty = &*typed.ty;
        match classify(ty) {
            Some(param) if params.contains(&param) => {
                cx.error(typed, "this parameter appears twice; remove one");
                ok = false;
            }
            Some(Param::Caller) if !matches!(kind, Kind::Handler | Kind::Fallback) => {
                cx.error(
                    ty,
                    format!("only call handlers have a caller; {what} cannot take `&mut Caller`"),
                );
                ok = false;
            }
            Some(Param::Caller) if !is_mut_ref(ty) => {
                cx.error(
                    ty,
                    "take the caller by mutable reference: `caller: &mut Caller<R>`",
                );
                ok = false;
            }
            Some(Param::Caller) => {
                caller = Some(ty.clone());
                params.push(Param::Caller);
            }
            Some(param) => params.push(param),
            None => {
                if let Some(message) = not_owned(ty, kind) {
                    cx.error(ty, message);
                    ok = false;
                    body_known = false;
                }
                values.push(typed);
                params.push(Param::Body);
            }
        }
    }

    // Which of the values is the body, and what a second one means.
    let body = match (kind, values.as_slice()) {
        (_, []) => parse_quote!(()),
        (Kind::Init | Kind::Handler | Kind::Info | Kind::Terminate, [body]) => (*body.ty).clone(),
        (Kind::Handler, [from, body]) if last_segment_is(&from.ty, "Pid") => {
            mark_from(&mut params);
            (*body.ty).clone()
        }
        (Kind::Fallback, [_, body]) => {
            mark_name(&mut params);
            (*body.ty).clone()
        }
        // Reported below with the fallback's expected signature.
        (Kind::Fallback, [_]) => parse_quote!(()),
        (Kind::Handler, [first, rest @ ..]) => {
            // After the caller's pid if there is one, the rest is one body.
            let (bundle, extra) = if last_segment_is(&first.ty, "Pid") {
                (rest, &rest[1..])
            } else {
                (values.as_slice(), rest)
            };
            let lead = if bundle.len() == values.len() {
                "a handler takes one argument, the body of the call"
            } else {
                "after the caller's pid, a handler takes one argument, the body of the call"
            };
            cx.error(
                args(extra),
                format!(
                    "{lead}; take these values as one tuple: `{}`",
                    tuple_suggestion(bundle)
                ),
            );
            ok = false;
            body_known = false;
            tuple_type(bundle)
        }
        (Kind::Init, [_, extra @ ..]) => {
            cx.error(
                args(extra),
                format!(
                    "init takes one argument, the value passed to `start`; take these values as one tuple, `{}`, and pass a tuple to `start`",
                    tuple_suggestion(&values)
                ),
            );
            ok = false;
            body_known = false;
            tuple_type(&values)
        }
        (Kind::Info, [_, extra @ ..]) => {
            cx.error(
                args(extra),
                "an #[info] handler takes one argument, the message it handles: `(&mut self, message: T)`",
            );
            ok = false;
            body_known = false;
            parse_quote!(())
        }
        (Kind::Terminate, [_, extra @ ..]) => {
            cx.error(
                args(extra),
                "terminate takes one argument, the exit reason: `(&mut self, reason: &ExitReason)`",
            );
            ok = false;
            body_known = false;
            parse_quote!(())
        }
        (Kind::Fallback, [_, _, extra @ ..]) => {
            cx.error(
                args(extra),
                "a #[fallback] handler takes the handler name and the body: `(&mut self, name: String, body: Value)`",
            );
            ok = false;
            body_known = false;
            parse_quote!(())
        }
    };
    if kind == Kind::Fallback && values.len() < 2 {
        cx.error(&sig.ident, "a #[fallback] handler takes the handler name and the body: `(&mut self, name: String, body: Value)`");
        ok = false;
    }
    if kind == Kind::Info && values.is_empty() {
        cx.error(
            &sig.ident,
            "an #[info] handler takes the message it handles: `(&mut self, message: T)`",
        );
        ok = false;
    }
    if kind == Kind::Terminate {
        if let [reason] = values.as_slice() {
            if !matches!(&*reason.ty, Type::Reference(_)) {
                cx.error(
                    &reason.ty,
                    "terminate borrows the exit reason: take `reason: &ExitReason`",
                );
                ok = false;
            }
        }
    }
    let ret = parse_ret(&sig.output);
    if matches!(kind, Kind::Handler | Kind::Fallback) && borrows(&ret.reply) {
        cx.error(
            &ret.reply,
            "a handler's reply travels back to the caller in a message, so it must be an owned \
             type: return `String` rather than `&str`, `Vec<T>` rather than `&[T]`",
        );
        ok = false;
    }
    if kind == Kind::Init && matches!(sig.output, ReturnType::Default) {
        cx.error(
            &sig.ident,
            "init returns the server: `-> Result<Self, E>` or `-> Self`",
        );
        ok = false;
    }
    // A stub client takes what the user's code passes today: the values after the caller's pid.
    let client_values = match (kind, values.as_slice()) {
        (Kind::Handler, [from, rest @ ..])
            if !rest.is_empty() && last_segment_is(&from.ty, "Pid") =>
        {
            rest
        }
        (_, all) => all,
    };
    Method {
        ident: sig.ident.clone(),
        params,
        body,
        body_known,
        caller,
        ret,
        ok,
        values: client_values.iter().map(|v| (*v.ty).clone()).collect(),
        generics: sig.generics.clone(),
    }
}

/// Why a value parameter of type `ty` cannot be taken, if it cannot: it must be owned, since it
/// arrives in a message (terminate only borrows its reason).
fn not_owned(ty: &Type, kind: Kind) -> Option<String> {
    let borrowed = matches!(ty, Type::Reference(_)) || borrows(ty);
    match (ty, kind) {
        (Type::Reference(_), Kind::Terminate) => None,
        (_, Kind::Init) if borrowed => Some(
            "init's argument is moved into the new server process, so it must be an owned type: \
             take `String` rather than `&str`, `Vec<T>` rather than `&[T]`, or an `Arc<T>` to share"
                .to_owned(),
        ),
        (_, Kind::Handler | Kind::Info | Kind::Fallback) if borrowed => Some(
            "a handler's argument arrives in a message, so it must be an owned type: \
             take `String` rather than `&str`, `Vec<T>` rather than `&[T]`"
                .to_owned(),
        ),
        (Type::ImplTrait(_), _) => Some(format!(
            "{} cannot take `impl Trait`: name a concrete type",
            kind.attr()
        )),
        _ => None,
    }
}

/// Whether `ty` borrows something for less than `'static`: it names a lifetime other than
/// `'static`, or has a `&` without one.
pub(crate) fn borrows(ty: &impl ToTokens) -> bool {
    use proc_macro2::{TokenStream, TokenTree};
    fn any(stream: TokenStream) -> bool {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        tokens.iter().enumerate().any(|(i, token)| match token {
            TokenTree::Group(group) => any(group.stream()),
            TokenTree::Punct(p) if p.as_char() == '&' => {
                !matches!(tokens.get(i + 1), Some(TokenTree::Punct(q)) if q.as_char() == '\'')
            }
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                !matches!(tokens.get(i + 1), Some(TokenTree::Ident(name)) if name == "static")
            }
            _ => false,
        })
    }
    any(ty.to_token_stream())
}

/// The tokens of some parameters, for an error spanning them.
fn args(values: &[&PatType]) -> proc_macro2::TokenStream {
    values.iter().map(|v| v.to_token_stream()).collect()
}

/// `(a, b): (u32, String)` for the parameters `a: u32, b: String`.
fn tuple_suggestion(values: &[&PatType]) -> String {
    let pats: Vec<String> = values.iter().map(|v| pretty(&v.pat)).collect();
    let types: Vec<String> = values.iter().map(|v| pretty(&v.ty)).collect();
    format!("({}): ({})", pats.join(", "), types.join(", "))
}

fn tuple_type(values: &[&PatType]) -> Type {
    let types = values.iter().map(|v| &v.ty);
    parse_quote!((#(#types),*))
}

/// Tokens as a person writes them (`Vec<u8>`, not `Vec < u8 >`), for messages.
fn pretty(tokens: &impl ToTokens) -> String {
    use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
    /// What the last piece written was, for the space before the next.
    #[derive(Clone, Copy, PartialEq)]
    enum Last {
        Start,
        Word,
        /// A punctuation character, and whether it joins the next one (`::`, `->`, `'a`).
        Punct(char, bool),
        Close,
        /// The second `:` of a `::`.
        PathSep,
    }
    fn write(out: &mut String, stream: TokenStream, last: &mut Last) {
        for token in stream {
            let (space, next) = match &token {
                TokenTree::Ident(_) | TokenTree::Literal(_) => (
                    matches!(*last, Last::Word | Last::Punct(',' | ';' | '=' | '+', _))
                        || matches!(*last, Last::Punct(':' | '>', false)),
                    Last::Word,
                ),
                TokenTree::Punct(punct) => {
                    let c = punct.as_char();
                    let joint = punct.spacing() == Spacing::Joint;
                    let space = match c {
                        '=' | '+' => *last != Last::Start,
                        '-' => joint && *last != Last::Start,
                        _ => false,
                    };
                    let next = if c == ':' && *last == Last::Punct(':', true) {
                        Last::PathSep
                    } else {
                        Last::Punct(c, joint)
                    };
                    (space, next)
                }
                TokenTree::Group(group) => (
                    matches!(*last, Last::Punct(',' | ';' | '=' | '+', _))
                        || matches!(*last, Last::Punct(':' | '>', false))
                        || (*last == Last::Word && group.delimiter() == Delimiter::Brace),
                    Last::Close,
                ),
            };
            if space {
                out.push(' ');
            }
            *last = next;
            match token {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{ ", " }"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    *last = Last::Start;
                    write(out, group.stream(), last);
                    out.push_str(close);
                    *last = Last::Close;
                }
                other => out.push_str(&other.to_string()),
            }
        }
    }
    let mut out = String::new();
    write(&mut out, tokens.to_token_stream(), &mut Last::Start);
    out
}

/// The impl block's generics followed by a method's, lifetimes first as Rust requires.
fn merge(outer: &Generics, inner: &Generics) -> Generics {
    let mut merged = outer.clone();
    merged.params = outer
        .params
        .iter()
        .chain(&inner.params)
        .filter(|p| matches!(p, syn::GenericParam::Lifetime(_)))
        .chain(
            outer
                .params
                .iter()
                .chain(&inner.params)
                .filter(|p| !matches!(p, syn::GenericParam::Lifetime(_))),
        )
        .cloned()
        .collect();
    if let Some(inner) = &inner.where_clause {
        merged
            .make_where_clause()
            .predicates
            .extend(inner.predicates.iter().cloned());
    }
    merged
}

/// Whether a handler's client-facing types name the impl block's generic parameters.
fn names_generics(method: &Method, generics: &Generics) -> bool {
    use proc_macro2::TokenTree;
    let names: Vec<String> = generics
        .params
        .iter()
        .map(|param| match param {
            syn::GenericParam::Type(t) => t.ident.to_string(),
            syn::GenericParam::Const(c) => c.ident.to_string(),
            syn::GenericParam::Lifetime(l) => l.lifetime.ident.to_string(),
        })
        .collect();
    fn any(stream: proc_macro2::TokenStream, names: &[String]) -> bool {
        stream.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => names.iter().any(|n| ident == n),
            TokenTree::Group(group) => any(group.stream(), names),
            _ => false,
        })
    }
    let types = method.values.iter().chain([&method.ret.reply]);
    types
        .into_iter()
        .any(|ty| any(ty.to_token_stream(), &names))
}

/// The special parameters, recognised by type.
fn classify(ty: &Type) -> Option<Param> {
    let Type::Reference(reference) = ty else {
        return None;
    };
    if last_segment_is(&reference.elem, "Context") {
        Some(Param::Context)
    } else if last_segment_is(&reference.elem, "Caller") {
        Some(Param::Caller)
    } else {
        None
    }
}

fn is_mut_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some())
}

fn mark_from(params: &mut [Param]) {
    if let Some(first) = params.iter_mut().find(|p| **p == Param::Body) {
        *first = Param::From;
    }
}

fn mark_name(params: &mut [Param]) {
    if let Some(first) = params.iter_mut().find(|p| **p == Param::Body) {
        *first = Param::Name;
    }
}

fn parse_ret(output: &ReturnType) -> Ret {
    let ty: Type = match output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let (reply, flow) = match single_generic(&ty, "Reply") {
        Some(inner) => (inner, true),
        None => (ty, false),
    };
    let fallible = last_segment_is(&reply, "Result");
    Ret {
        reply,
        flow,
        fallible,
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

/// `T` in `…::Name<T>`.
fn single_generic(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match args.args.first()? {
            GenericArgument::Type(inner) => Some(inner.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Handler names are unique, and the client methods generated from the Rust names neither collide
/// with each other nor with `ServerRef`'s own methods. A handler in error here is not dispatched;
/// one whose client methods would duplicate another's gets none.
fn check_names(cx: &Ctxt, handlers: &mut [Handler]) {
    // Each name with the method that installs it first.
    let mut names: HashMap<String, Ident> = HashMap::new();
    let mut methods: HashMap<String, Ident> = HashMap::new();
    for handler in handlers {
        if let Some(name) = &handler.name {
            if let Some(first) = names.get(&name.value()) {
                cx.error(
                    name,
                    format!(
                        "duplicate handler name \"{}\": the method `{first}` already installs it; \
                         each #[install] name must be unique, so rename one",
                        name.value()
                    ),
                );
                handler.live = false;
            } else {
                names.insert(name.value(), handler.method.ident.clone());
            }
        }
        let ident = handler.method.ident.clone();
        let base = ident.to_string();
        if RESERVED.contains(&base.as_str()) {
            cx.error(
                &ident,
                format!(
                    "a handler method cannot be named `{base}`: `ServerRef::{base}` would hide it; \
                     rename the method (the #[install] name can stay \"{}\")",
                    handler.display_name()
                ),
            );
            handler.live = false;
        }
        let generated = [
            base.clone(),
            format!("{base}_timeout"),
            format!("cast_{base}"),
        ];
        let taken = generated
            .iter()
            .find_map(|g| methods.get(g).map(|o| (g, o)));
        match taken {
            // Two methods of the same name: rustc reports the duplicate definition.
            Some((_, other)) if *other == ident => {
                handler.live = false;
                handler.client = false;
            }
            Some((generated, other)) => {
                cx.error(&ident, format!("the client method `{generated}` generated for `{ident}` collides with one generated for `{other}`; rename one of them"));
                handler.live = false;
                handler.client = false;
            }
            None => {
                for generated in generated {
                    methods.insert(generated, ident.clone());
                }
            }
        }
    }
}

/// Two `#[info]` handlers for the same type could never both run; the second is left out.
fn check_info_types(cx: &Ctxt, infos: &mut Vec<Method>) {
    let mut seen: HashMap<String, Ident> = HashMap::new();
    infos.retain(|info| {
        let key = info.body.to_token_stream().to_string();
        if let Some(first) = seen.get(&key) {
            cx.error(
                &info.body,
                format!(
                    "the #[info] handler `{first}` already takes `{}`, and a message goes to one \
                     handler: merge the two",
                    pretty(&info.body)
                ),
            );
            false
        } else {
            seen.insert(key, info.ident.clone());
            true
        }
    });
}

/// A span inside the user's code, for generated items that should point there.
pub(crate) fn span_of(tokens: &impl ToTokens) -> Span {
    tokens
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_writes_types_and_patterns_as_people_do() {
        let cases: [(Type, &str); 7] = [
            (parse_quote!(Vec<u8>), "Vec<u8>"),
            (
                parse_quote!(std::collections::HashMap<String, Vec<u8>>),
                "std::collections::HashMap<String, Vec<u8>>",
            ),
            (parse_quote!(&'static str), "&'static str"),
            (parse_quote!((u32, [u8; 4])), "(u32, [u8; 4])"),
            (
                parse_quote!(Box<dyn Fn(u32) -> u32 + Send>),
                "Box<dyn Fn(u32) -> u32 + Send>",
            ),
            (parse_quote!(<T as Trait>::Out), "<T as Trait>::Out"),
            (
                parse_quote!(impl Iterator<Item = u8>),
                "impl Iterator<Item = u8>",
            ),
        ];
        for (ty, expected) in cases {
            assert_eq!(pretty(&ty), expected);
        }
        let pat: syn::Pat = parse_quote!(Point { x, y: mut b });
        assert_eq!(pretty(&pat), "Point { x, y: mut b }");
    }

    #[test]
    fn near_is_one_edit_or_one_swap() {
        for word in ["locl", "lcoal", "locals", "loacl", "lokal", "ocal"] {
            assert!(is_near(word, "local"), "{word}");
        }
        for word in ["local", "remote", "lo", "laclo"] {
            assert!(!is_near(word, "local"), "{word}");
        }
    }

    #[test]
    fn borrows_is_any_lifetime_but_static() {
        let borrowed: [Type; 4] = [
            parse_quote!(&str),
            parse_quote!(Option<&[u8]>),
            parse_quote!(Cow<'a, str>),
            parse_quote!(&'_ str),
        ];
        for ty in borrowed {
            assert!(borrows(&ty), "{}", pretty(&ty));
        }
        let owned: [Type; 3] = [
            parse_quote!(String),
            parse_quote!(&'static str),
            parse_quote!(Box<dyn Fn() + 'static>),
        ];
        for ty in owned {
            assert!(!borrows(&ty), "{}", pretty(&ty));
        }
    }
}
