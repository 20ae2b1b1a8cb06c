//! The handler attributes, `#[install("name")]` (with its `local` and `task` options), `#[info]` and
//! `#[fallback]`: the role each gives a method. `#[gen_server]` reads and removes them before they
//! can expand on their own, so a mistake in one is reported here, at the attribute, with the
//! spelling it most likely meant.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Ident, LitInt, LitStr};

use crate::{ctxt::Ctxt, tokens::pretty};

/// What a method's attribute makes it.
pub(crate) enum Role {
    Install {
        name: Option<LitStr>,
        local: bool,
        task: Option<Task>,
    },
    Info,
    Fallback,
    OnError,
    /// `#[background(every = "1s")]`: the period in milliseconds, when it is usable.
    Background(Option<u64>),
}

/// A task handler's options: `task`, `task(replace)`, `task(ignore, limit = 8)`.
pub(crate) struct Task {
    /// The strategy's variant of `ferrotp::gen_server::Strategy`.
    pub(crate) strategy: TokenStream,
    /// How many callers' tasks run at once, when given.
    pub(crate) limit: Option<usize>,
}

/// Removes this crate's attributes from a method and says which role they give it, and whether
/// its attribute is free of errors.
pub(crate) fn take_role(
    cx: &Ctxt,
    attrs: &mut Vec<Attribute>,
    method: &Ident,
) -> Option<(Role, bool)> {
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
            "on_error" => (Role::OnError, no_args(cx, &attr, "on_error")),
            "background" => parse_background(cx, &attr),
            _ => {
                kept.push(attr);
                continue;
            }
        };
        if let Some(first) = &first {
            cx.error(
                &attr,
                format!(
                    "a method has one role: #[install], #[info], #[fallback], #[background] or \
                     #[on_error]; \
                     this method already has `{}`, so remove one of them",
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
                task: None,
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
        let mut task: Option<Task> = None;
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
                _ if option.path().is_ident("task") => {
                    if task.is_some() {
                        cx.error(&option, "`task` is given twice; remove one");
                        ok = false;
                    }
                    match parse_task(&option) {
                        Ok(parsed) => task = Some(parsed),
                        Err(error) => {
                            cx.push(error);
                            ok = false;
                            // Still a task handler: its signature is read as one.
                            task = Some(Task {
                                strategy: quote!(Queue),
                                limit: None,
                            });
                        }
                    }
                }
                _ => {
                    let name = pretty(&name);
                    let hint = match option.path().get_ident() {
                        Some(ident) if is_near(&ident.to_string(), "local") => format!(
                            "unknown option `{ident}`; did you mean `local`? `#[install({name}, local)]`"
                        ),
                        Some(ident) if is_near(&ident.to_string(), "task") => format!(
                            "unknown option `{ident}`; did you mean `task`? `#[install({name}, task)]`"
                        ),
                        _ => format!(
                            "unknown option `{}`: the options are `local`, for a handler \
                             reached by the typed client only (`#[install({name}, local)]`), and \
                             `task`, for a handler whose work runs beside the server's loop \
                             (`#[install({name}, task)]`)",
                            pretty(&option)
                        ),
                    };
                    cx.error(&option, hint);
                    ok = false;
                }
            }
        }
        Ok((name, local, task))
    });
    match parsed {
        Ok((syn::Lit::Str(name), local, task)) if !name.value().is_empty() => (
            Role::Install {
                name: Some(name),
                local,
                task,
            },
            ok,
        ),
        Ok((syn::Lit::Str(name), local, task)) => {
            cx.error(
                name,
                format!("a handler name cannot be empty: `#[install(\"{method}\")]`"),
            );
            (
                Role::Install {
                    name: None,
                    local,
                    task,
                },
                false,
            )
        }
        Ok((other, local, task)) => {
            cx.error(other, &usage);
            (
                Role::Install {
                    name: None,
                    local,
                    task,
                },
                false,
            )
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
                    task: None,
                },
                false,
            )
        }
    }
}

/// `task`, `task(replace)`, `task(limit = 8)`, `task(ignore, limit = 8)`.
fn parse_task(option: &syn::Meta) -> syn::Result<Task> {
    let usage = "write `task`, or `task(queue)`, `task(replace)` or `task(ignore)` for the \
                 strategy, optionally with a limit: `task(replace, limit = 8)`";
    let list = match option {
        syn::Meta::Path(_) => {
            return Ok(Task {
                strategy: quote!(Queue),
                limit: None,
            });
        }
        syn::Meta::List(list) => list,
        syn::Meta::NameValue(_) => return Err(syn::Error::new_spanned(option, usage)),
    };
    let mut strategy = None;
    let mut limit = None;
    list.parse_nested_meta(|meta| {
        let word = meta.path.get_ident().map(ToString::to_string);
        match word.as_deref() {
            Some(word @ ("queue" | "replace" | "ignore")) => {
                if strategy.is_some() {
                    return Err(meta.error("a task handler has one strategy; remove one"));
                }
                strategy = Some(match word {
                    "queue" => quote!(Queue),
                    "replace" => quote!(Replace),
                    _ => quote!(Ignore),
                });
                Ok(())
            }
            Some("limit") => {
                if limit.is_some() {
                    return Err(meta.error("`limit` is given twice; remove one"));
                }
                let value: LitInt = meta.value()?.parse()?;
                match value.base10_parse::<usize>() {
                    Ok(0) | Err(_) => Err(syn::Error::new_spanned(
                        &value,
                        "the limit is how many callers' tasks run at once: a whole number, \
                         at least 1",
                    )),
                    Ok(n) => {
                        limit = Some(n);
                        Ok(())
                    }
                }
            }
            Some(other) => {
                let hint = ["queue", "replace", "ignore", "limit"]
                    .into_iter()
                    .find(|known| is_near(other, known))
                    .map_or_else(String::new, |known| format!("did you mean `{known}`? "));
                Err(meta.error(format!("unknown task option `{other}`: {hint}{usage}")))
            }
            None => Err(meta.error(usage)),
        }
    })?;
    Ok(Task {
        strategy: strategy.unwrap_or_else(|| quote!(Queue)),
        limit,
    })
}

/// `#[background(every = "1s")]`: the role, and whether the attribute is free of errors.
fn parse_background(cx: &Ctxt, attr: &Attribute) -> (Role, bool) {
    let usage = "give the period: `#[background(every = \"1s\")]` (units: ms, s, m, h)";
    let mut every = None;
    let parsed = match &attr.meta {
        syn::Meta::List(list) => list.parse_nested_meta(|meta| {
            if !meta.path.is_ident("every") {
                let option = meta
                    .path
                    .get_ident()
                    .map_or_else(String::new, ToString::to_string);
                let hint = if is_near(&option, "every") {
                    "did you mean `every`? "
                } else {
                    ""
                };
                return Err(meta.error(format!("unknown option `{option}`: {hint}{usage}")));
            }
            if every.is_some() {
                return Err(meta.error("`every` is given twice; remove one"));
            }
            let period: LitStr = meta.value()?.parse()?;
            match parse_period(&period.value()) {
                Some(ms) => every = Some(ms),
                None => {
                    return Err(syn::Error::new_spanned(
                        &period,
                        "a period is a whole number above zero and a unit: \"250ms\", \"1s\", \
                         \"5m\" or \"1h\"",
                    ));
                }
            }
            Ok(())
        }),
        _ => Err(syn::Error::new_spanned(attr, usage)),
    };
    match parsed {
        Ok(()) if every.is_some() => (Role::Background(every), true),
        Ok(()) => {
            cx.error(attr, usage);
            (Role::Background(None), false)
        }
        Err(error) => {
            cx.push(error);
            (Role::Background(None), false)
        }
    }
}

/// `"250ms"`, `"1s"`, `"5m"`, `"1h"` in milliseconds; `None` for anything else, zero included.
fn parse_period(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(scale).filter(|&ms| ms > 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_a_whole_number_and_a_unit() {
        assert_eq!(parse_period("250ms"), Some(250));
        assert_eq!(parse_period("1s"), Some(1_000));
        assert_eq!(parse_period("5m"), Some(300_000));
        assert_eq!(parse_period("1h"), Some(3_600_000));
        for bad in [
            "",
            "1",
            "s",
            "0s",
            "1.5s",
            "1 s",
            "-1s",
            "1sec",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
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
}
