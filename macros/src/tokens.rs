//! The user's tokens as the macro's output refers to them: `pretty` writes them as a person
//! would, for error messages; `span_of` gives a span inside them, for generated items whose type
//! errors should point at the user's code.

use proc_macro2::Span;
use quote::ToTokens;

/// Tokens as a person writes them (`Vec<u8>`, not `Vec < u8 >`), for messages.
pub(crate) fn pretty(tokens: &impl ToTokens) -> String {
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
    use syn::{Type, parse_quote};

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
}
