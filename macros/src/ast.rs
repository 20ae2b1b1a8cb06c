//! The model of a `#[gen_server]` impl block: parsed, checked, and stripped of the handler
//! attributes. Every model node keeps the user's tokens, so errors (here and from the type checker
//! on generated code) point at them.

use std::collections::HashMap;

use proc_macro2::Span;
use quote::ToTokens;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr,
    PathArguments, ReturnType, Type, parse_quote,
};

use crate::ctxt::Ctxt;

pub(crate) struct Server {
    pub(crate) self_ty: Type,
    /// The server type's name, for naming the generated client.
    pub(crate) ident: Ident,
    pub(crate) init: Init,
    pub(crate) terminate: Option<Method>,
    pub(crate) handlers: Vec<Handler>,
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
    pub(crate) ret: Ret,
}

pub(crate) struct Handler {
    pub(crate) name: LitStr,
    /// Reachable by the typed client only (no serde bounds on its types).
    pub(crate) local: bool,
    pub(crate) method: Method,
}

pub(crate) struct Init {
    pub(crate) method: Method,
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
    Install { name: LitStr, local: bool },
    Info,
    Fallback,
}

/// Parses and checks `item`, removing the handler attributes from it. Every problem is reported
/// to `cx`; `None` when the block cannot be modelled at all.
pub(crate) fn parse(cx: &Ctxt, item: &mut ItemImpl) -> Option<Server> {
    if let Some((path, _)) = &item.trait_ {
        cx.error(path, "#[gen_server] goes on an inherent impl block (`impl MyServer { ... }`), not on a trait impl");
        return None;
    }
    if !item.generics.params.is_empty() {
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
        let role = take_role(cx, &mut function.attrs);
        let name = function.sig.ident.to_string();
        own_start |= name == "start" || name == "start_link";
        match role {
            Some(Role::Install { name, local }) => {
                if let Some(method) = method(cx, function, Kind::Handler) {
                    handlers.push(Handler {
                        name,
                        local,
                        method,
                    });
                }
            }
            Some(Role::Info) => {
                if let Some(method) = method(cx, function, Kind::Info) {
                    infos.push(method);
                }
            }
            Some(Role::Fallback) => {
                if fallback.is_some() {
                    cx.error(
                        &function.sig.ident,
                        "a gen_server has at most one #[fallback] handler",
                    );
                } else {
                    fallback = method(cx, function, Kind::Fallback);
                }
            }
            None if name == "init" => {
                init = method(cx, function, Kind::Init).map(|method| Init { method })
            }
            None if name == "terminate" => terminate = method(cx, function, Kind::Terminate),
            None => {}
        }
    }

    let Some(init) = init else {
        cx.error(
            &item.self_ty,
            "a #[gen_server] needs an `init` that builds the server: \
             add `async fn init(arg: A) -> Result<Self, E>` (or `-> Self`) to this impl block",
        );
        return None;
    };
    check_names(cx, &handlers);
    check_info_types(cx, &infos);
    Some(Server {
        self_ty: (*item.self_ty).clone(),
        ident,
        init,
        terminate,
        handlers,
        infos,
        fallback,
        own_start,
    })
}

/// Removes this crate's attributes from a method and says which role they give it.
fn take_role(cx: &Ctxt, attrs: &mut Vec<Attribute>) -> Option<Role> {
    let mut role = None;
    let mut first: Option<Attribute> = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let Some(last) = attr.path().segments.last() else {
            kept.push(attr);
            continue;
        };
        let parsed = match last.ident.to_string().as_str() {
            "install" => parse_install(cx, &attr),
            "info" => no_args(cx, &attr, "info").then_some(Role::Info),
            "fallback" => no_args(cx, &attr, "fallback").then_some(Role::Fallback),
            _ => {
                kept.push(attr);
                continue;
            }
        };
        if let Some(first) = &first {
            let mut error = syn::Error::new_spanned(
                &attr,
                "a method has one role: #[install], #[info] or #[fallback]; remove one",
            );
            error.combine(syn::Error::new_spanned(
                first,
                "its other role is given here",
            ));
            cx.push(error);
        } else {
            first = Some(attr);
            role = parsed;
        }
    }
    *attrs = kept;
    role
}

fn no_args(cx: &Ctxt, attr: &Attribute, name: &str) -> bool {
    if matches!(attr.meta, syn::Meta::Path(_)) {
        true
    } else {
        cx.error(attr, format!("#[{name}] takes no arguments"));
        false
    }
}

fn parse_install(cx: &Ctxt, attr: &Attribute) -> Option<Role> {
    const USAGE: &str = "name the handler with a string: #[install(\"ping\")]";
    let syn::Meta::List(list) = &attr.meta else {
        cx.error(attr, USAGE);
        return None;
    };
    let parsed = list.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        let name: syn::Lit = input.parse()?;
        let mut local = false;
        if input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let flag: Ident = input.parse()?;
            if flag != "local" {
                return Err(syn::Error::new(
                    flag.span(),
                    "the only option is `local`: #[install(\"ping\", local)]",
                ));
            }
            local = true;
        }
        Ok((name, local))
    });
    match parsed {
        Ok((syn::Lit::Str(name), local)) if !name.value().is_empty() => {
            Some(Role::Install { name, local })
        }
        Ok((syn::Lit::Str(name), _)) => {
            cx.error(name, "a handler name cannot be empty");
            None
        }
        Ok((other, _)) => {
            cx.error(other, USAGE);
            None
        }
        Err(error) => {
            let mut error = error;
            if error.to_string().starts_with("expected literal") {
                error = syn::Error::new(error.span(), USAGE);
            }
            cx.push(error);
            None
        }
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

/// Reads one method's signature for its role, reporting what does not fit.
fn method(cx: &Ctxt, function: &ImplItemFn, kind: Kind) -> Option<Method> {
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
    let mut values: Vec<&Type> = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        let ty = &*typed.ty;
        match classify(ty) {
            Some(param) if params.contains(&param) => {
                cx.error(ty, "this parameter appears twice; remove one");
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
            Some(param) => params.push(param),
            None if matches!(ty, Type::Reference(_)) && kind != Kind::Terminate => {
                cx.error(
                    ty,
                    "a handler's argument arrives in a message, so it must be an owned type: \
                     take `String` rather than `&str`, `Vec<T>` rather than `&[T]`",
                );
                ok = false;
            }
            None if matches!(ty, Type::ImplTrait(_)) => {
                cx.error(
                    ty,
                    format!("{what} cannot take `impl Trait`: name a concrete type"),
                );
                ok = false;
            }
            None => {
                values.push(ty);
                params.push(Param::Body);
            }
        }
    }

    let body = match (kind, values.as_slice()) {
        (_, []) => parse_quote!(()),
        (Kind::Init | Kind::Handler | Kind::Info | Kind::Terminate, [body]) => (*body).clone(),
        (Kind::Handler, [from, body]) => {
            if !last_segment_is(from, "Pid") {
                cx.error(from, "with two arguments, the first is the caller's pid (`from: Pid`) and the second the body");
                ok = false;
            }
            mark_from(&mut params);
            (*body).clone()
        }
        (Kind::Fallback, [_, body]) => {
            mark_name(&mut params);
            (*body).clone()
        }
        // Reported below with the fallback's expected signature.
        (Kind::Fallback, [_]) => parse_quote!(()),
        (Kind::Handler, [_, _, extra, ..]) => {
            cx.error(extra, "a handler takes one argument (the body), optionally after the caller's pid; bundle several values in a struct or a tuple");
            return None;
        }
        (_, [_, extra, ..]) => {
            cx.error(
                extra,
                format!("{what} takes one argument; bundle several values in a struct or a tuple"),
            );
            return None;
        }
    };
    if kind == Kind::Fallback && values.len() != 2 {
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
    if kind == Kind::Init && matches!(sig.output, ReturnType::Default) {
        cx.error(
            &sig.ident,
            "init returns the server: `-> Result<Self, E>` or `-> Self`",
        );
        ok = false;
    }
    let ret = parse_ret(&sig.output);
    ok.then(|| Method {
        ident: sig.ident.clone(),
        params,
        body,
        ret,
    })
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
/// with each other nor with `ServerRef`'s own methods.
fn check_names(cx: &Ctxt, handlers: &[Handler]) {
    let mut names: HashMap<String, &LitStr> = HashMap::new();
    let mut methods: HashMap<String, &Ident> = HashMap::new();
    for handler in handlers {
        if let Some(first) = names.insert(handler.name.value(), &handler.name) {
            let mut error = syn::Error::new_spanned(
                &handler.name,
                format!(
                    "duplicate handler name \"{}\": each #[install] name must be unique",
                    handler.name.value()
                ),
            );
            error.combine(syn::Error::new_spanned(
                first,
                "the name is first installed here",
            ));
            cx.push(error);
        }
        let ident = &handler.method.ident;
        let base = ident.to_string();
        if RESERVED.contains(&base.as_str()) {
            cx.error(
                ident,
                format!(
                    "a handler method cannot be named `{base}`: `ServerRef::{base}` would hide it; \
                     rename the method (the #[install] name can stay \"{}\")",
                    handler.name.value()
                ),
            );
        }
        for generated in [
            base.clone(),
            format!("{base}_timeout"),
            format!("cast_{base}"),
        ] {
            if let Some(other) = methods.insert(generated.clone(), ident) {
                if other != ident {
                    cx.error(ident, format!("the client method `{generated}` generated for `{ident}` collides with one generated for `{other}`; rename one of them"));
                }
            }
        }
    }
}

/// Two `#[info]` handlers for the same type could never both run.
fn check_info_types(cx: &Ctxt, infos: &[Method]) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for info in infos {
        let key = info.body.to_token_stream().to_string();
        if let Some(first) = seen.insert(key, &info.ident) {
            let mut error = syn::Error::new_spanned(
                &info.body,
                "another #[info] handler already takes this type; merge them",
            );
            error.combine(syn::Error::new_spanned(
                first,
                "the first handler of this type",
            ));
            cx.push(error);
        }
    }
}

/// A span inside the user's code, for generated items that should point there.
pub(crate) fn span_of(tokens: &impl ToTokens) -> Span {
    tokens
        .to_token_stream()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}
