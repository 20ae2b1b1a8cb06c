//! One method's signature, read for its role (`init`, `terminate`, or an `#[install]`, `#[info]` or
//! `#[fallback]` handler): which parameters it takes (the context, the caller, the caller's pid,
//! the body), what it returns, and every part that does not fit the role, each an error at the
//! user's tokens naming the signature that would. A method that does not fit is still read as far
//! as it can be, so that its stubs take the values the user's code passes today.

use quote::ToTokens;
use syn::{
    FnArg, GenericArgument, ImplItemFn, PatType, PathArguments, ReturnType, Type, parse_quote,
};

use crate::{
    ast::{Method, Param, Ret},
    ctxt::Ctxt,
    tokens::pretty,
};

/// A method's role, which decides the signature it must have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Init,
    Terminate,
    Handler,
    /// An `#[install]` handler with the `task` option.
    Task,
    Info,
    Fallback,
    Background,
    OnError,
}

impl Kind {
    fn attr(self) -> &'static str {
        match self {
            Kind::Init => "init",
            Kind::Terminate => "terminate",
            Kind::Handler => "#[install]",
            Kind::Task => "a task handler",
            Kind::Info => "#[info]",
            Kind::Fallback => "#[fallback]",
            Kind::Background => "#[background]",
            Kind::OnError => "#[on_error]",
        }
    }
}

/// Reads one method's signature for its role, reporting what does not fit. The method comes back
/// even when something does not fit, marked `ok: false`, with as much of it as could be read.
pub(crate) fn method(cx: &Ctxt, function: &ImplItemFn, kind: Kind) -> Method {
    let sig = &function.sig;
    let what = kind.attr();
    let mut ok = true;
    // A task handler takes the parameters of any other handler; only its `fn` and its return
    // type differ.
    let task = kind == Kind::Task;
    let kind = if task { Kind::Handler } else { kind };
    if task {
        if let Some(asyncness) = sig.asyncness {
            cx.error(
                asyncness,
                "a task handler is a plain `fn` that returns its task: remove `async`, take what \
                 the task needs from `self`, and return `async move { ... }` as \
                 `-> impl Future<Output = R> + Send + 'static`",
            );
            ok = false;
        }
    } else if sig.asyncness.is_none() {
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
            Some(Param::Caller) if task => {
                cx.error(
                    ty,
                    "a task handler answers with its task's output, so it takes no \
                     `&mut Caller`; to know the caller, take `from: Pid` before the body",
                );
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
        (Kind::Init | Kind::Handler | Kind::Task | Kind::Info | Kind::Terminate, [body]) => {
            (*body.ty).clone()
        }
        (Kind::Handler | Kind::Task, [from, body]) if last_segment_is(&from.ty, "Pid") => {
            mark_from(&mut params);
            (*body.ty).clone()
        }
        (Kind::Fallback, [_, body]) => {
            mark_name(&mut params);
            (*body.ty).clone()
        }
        // Reported below with the fallback's expected signature.
        (Kind::Fallback, [_]) => parse_quote!(()),
        (Kind::Handler | Kind::Task, [first, rest @ ..]) => {
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
        (Kind::OnError, [failure]) => (*failure.ty).clone(),
        (Kind::OnError, extra) => {
            cx.error(
                args(extra),
                "an #[on_error] hook takes the failure: \
                 `async fn on_error(&mut self, failure: Failure) -> OnError`",
            );
            ok = false;
            body_known = false;
            parse_quote!(())
        }
        (Kind::Background, extra) => {
            cx.error(
                args(extra),
                "a #[background] method takes no argument: `async fn tick(&mut self)`, with \
                 `ctx: &mut Context` if it needs the server's context",
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
    if kind == Kind::OnError && values.is_empty() {
        cx.error(
            &sig.ident,
            "an #[on_error] hook takes the failure: \
             `async fn on_error(&mut self, failure: Failure) -> OnError`",
        );
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
    let ret = if task {
        let (ret, ret_ok) = parse_task_ret(cx, &sig.output);
        ok &= ret_ok;
        ret
    } else {
        parse_ret(&sig.output)
    };
    if matches!(kind, Kind::Handler | Kind::Fallback) && borrows(&ret.reply) {
        cx.error(
            &ret.reply,
            "a handler's reply travels back to the caller in a message, so it must be an owned \
             type: return `String` rather than `&str`, `Vec<T>` rather than `&[T]`",
        );
        ok = false;
    }
    if kind == Kind::OnError && !last_segment_is(&ret.reply, "OnError") {
        cx.error(
            &sig.output,
            "an #[on_error] hook returns its decision: `-> OnError` (`OnError::Crash` or \
             `OnError::Continue`)",
        );
        ok = false;
    }
    if kind == Kind::Background && !is_unit(&ret.reply) {
        cx.error(
            &sig.output,
            "a #[background] method returns nothing, or `Reply<()>` to stop the server",
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

/// A task handler's return type, `impl Future<Output = R> + Send + 'static`: the reply is `R`.
fn parse_task_ret(cx: &Ctxt, output: &ReturnType) -> (Ret, bool) {
    let usage = "a task handler returns its task: `-> impl Future<Output = R> + Send + 'static`, \
                 with `R` the reply (`Result<T, E>` to fail)";
    let fail = |ret: Ret| (ret, false);
    let unit = || Ret {
        reply: parse_quote!(()),
        flow: false,
        fallible: false,
    };
    let ty = match output {
        ReturnType::Type(_, ty) => &**ty,
        ReturnType::Default => {
            cx.error(output, usage);
            return fail(unit());
        }
    };
    let Type::ImplTrait(bounds) = ty else {
        cx.error(ty, usage);
        // Most likely the reply itself: the client's stub returns it.
        return fail(parse_ret(output));
    };
    let mut reply = None;
    let (mut send, mut statik) = (false, false);
    for bound in &bounds.bounds {
        match bound {
            syn::TypeParamBound::Trait(bound) => {
                let Some(last) = bound.path.segments.last() else {
                    continue;
                };
                if last.ident == "Send" {
                    send = true;
                } else if last.ident == "Future" {
                    if let PathArguments::AngleBracketed(args) = &last.arguments {
                        reply = args.args.iter().find_map(|arg| match arg {
                            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                                Some(assoc.ty.clone())
                            }
                            _ => None,
                        });
                    }
                }
            }
            syn::TypeParamBound::Lifetime(lifetime) => statik |= lifetime.ident == "static",
            _ => {}
        }
    }
    let Some(reply) = reply else {
        cx.error(ty, usage);
        return fail(unit());
    };
    if single_generic(&reply, "Reply").is_some() {
        cx.error(
            &reply,
            "a task cannot stop the server or defer its reply: its output is the reply, `R` or \
             `Result<T, E>`",
        );
        return fail(unit());
    }
    let fallible = last_segment_is(&reply, "Result");
    let ret = Ret {
        reply,
        flow: false,
        fallible,
    };
    if !(send && statik) {
        cx.error(
            ty,
            "a task runs beside the server, on any thread, after this method has returned: \
             add `+ Send + 'static` to the return type, and move what the task needs into it",
        );
        return fail(ret);
    }
    (ret, true)
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

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
