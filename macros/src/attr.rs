//! The handler attributes, `#[install("name")]` (with its `local` option), `#[info]` and
//! `#[fallback]`: the role each gives a method. `#[gen_server]` reads and removes them before they
//! can expand on their own, so a mistake in one is reported here, at the attribute, with the
//! spelling it most likely meant.

use syn::{Attribute, Ident, LitStr};

use crate::{ctxt::Ctxt, tokens::pretty};

/// What a method's attribute makes it.
pub(crate) enum Role {
    Install { name: Option<LitStr>, local: bool },
    Info,
    Fallback,
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

#[cfg(test)]
mod tests {
    use super::*;

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
