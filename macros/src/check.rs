//! The checks across handlers, run once each method has been read on its own: handler names are
//! unique, the client methods generated from the methods' names collide neither with each other nor
//! with `ServerRef`'s own, and no two `#[info]` handlers take the same type. A handler that fails
//! one is left out of the dispatch (and gets no client methods if they would duplicate another's),
//! so its error is the only one.

use std::collections::HashMap;

use quote::ToTokens;
use syn::Ident;

use crate::{
    ast::{Handler, Method},
    ctxt::Ctxt,
    tokens::pretty,
};

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

/// Runs every check across the handlers, reporting to `cx` and marking (or leaving out) the
/// handlers in error.
pub(crate) fn check(cx: &Ctxt, handlers: &mut [Handler], infos: &mut Vec<Method>) {
    check_names(cx, handlers);
    check_info_types(cx, infos);
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
