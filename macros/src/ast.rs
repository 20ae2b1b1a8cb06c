//! The model of a `#[gen_server]` impl block, and `parse`, which builds it: the block parsed,
//! checked, and stripped of the handler attributes. Every model node keeps the user's tokens, so
//! errors (here and from the type checker on generated code) point at them.
//!
//! `parse` walks the block and hands each method to the module that knows its part: `attr` reads
//! the handler attribute that gives the method its role, `signature` reads the signature for that
//! role, and `check` then looks across the handlers. A generic server is modelled too, with nothing
//! to dispatch, so that its stubs carry the generics its types name.

use quote::ToTokens;
use syn::{Generics, Ident, ImplItem, ItemImpl, LitStr, Type};

use crate::{
    attr::{Role, Task, take_role},
    check::check,
    ctxt::Ctxt,
    signature::{Kind, method},
};

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
    /// The `#[on_error]` hook, when there is a valid one.
    pub(crate) on_error: Option<Method>,
    /// The valid `#[background]` methods, with their periods in milliseconds.
    pub(crate) background: Vec<(Method, u64)>,
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
    /// A task handler: its options.
    pub(crate) task: Option<Task>,
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
    let mut background: Vec<(Method, u64)> = Vec::new();
    let mut on_error: Option<Method> = None;
    let mut hooks = 0;
    let mut own_start = false;
    for impl_item in &mut item.items {
        let ImplItem::Fn(function) = impl_item else {
            continue;
        };
        let role = take_role(cx, &mut function.attrs, &function.sig.ident);
        let name = function.sig.ident.to_string();
        own_start |= name == "start" || name == "start_link";
        match role {
            Some((Role::Install { name, local, task }, attr_ok)) => {
                let kind = match task {
                    Some(_) => Kind::Task,
                    None => Kind::Handler,
                };
                if task.is_some() {
                    // The shape a task handler must have (its future may not borrow `self`)
                    // is the one this lint would turn into an `async fn`.
                    function
                        .attrs
                        .push(syn::parse_quote!(#[allow(clippy::manual_async_fn)]));
                }
                let method = method(cx, function, kind);
                handlers.push(Handler {
                    live: attr_ok && method.ok && name.is_some(),
                    client: true,
                    name,
                    local,
                    task,
                    method,
                });
            }
            Some((Role::Info, attr_ok)) => {
                let method = method(cx, function, Kind::Info);
                if attr_ok && method.ok {
                    infos.push(method);
                }
            }
            Some((Role::Background(every), attr_ok)) => {
                let method = method(cx, function, Kind::Background);
                if let (Some(every), true, true) = (every, attr_ok, method.ok) {
                    background.push((method, every));
                }
            }
            Some((Role::OnError, attr_ok)) => {
                hooks += 1;
                if hooks > 1 {
                    cx.error(
                        &function.sig.ident,
                        "a gen_server has at most one #[on_error] hook; remove this one or merge \
                         it into the first",
                    );
                } else {
                    let method = method(cx, function, Kind::OnError);
                    if attr_ok && method.ok {
                        on_error = Some(method);
                    }
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
    check(cx, &mut handlers, &mut infos);
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
        background.clear();
        on_error = None;
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
        background,
        on_error,
        own_start,
    })
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
