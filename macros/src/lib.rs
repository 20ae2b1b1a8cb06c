//! Procedural macros for ferrotp: `#[gen_server]` and the handler
//! attributes it reads.
//!
//! Depend on `ferrotp`, which re-exports these; the generated code refers to `::ferrotp`.
//!
//! The crate follows parse → validate → generate: `ast::parse` turns the impl block into a model
//! that keeps the user's tokens (so errors point at them), collecting every error on the way and
//! marking the parts in error; `expand` then emits the user's block, the generated items (stubs
//! for the parts in error, so the user's code around them still type-checks) and the errors.
//! Each mistake is meant to cost the user one error, at their own tokens, saying how to fix it.
//!
//! # Layout
//!
//! - `ast`: the model of an impl block (server, methods, handlers) and `parse`, which builds it
//!   from the three modules below.
//! - `attr`: the handler attributes, `#[install]`, `#[info]` and `#[fallback]`: a method's role.
//! - `signature`: one method's signature, read for its role; every part that does not fit is an
//!   error.
//! - `check`: the checks across handlers: unique names and client methods, one `#[info]` per type.
//! - `expand`: the generated code, stubs for the parts in error included.
//! - `ctxt`: the error collector, so that one compile reports every error.
//! - `tokens`: the user's tokens as error messages write them and generated items point at them.

// Bad input gets a typed error here, never a panic, so every unwrap is a reviewed exception.
#![warn(clippy::unwrap_used)]

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod signature;
mod tokens;

use proc_macro::TokenStream;
use quote::quote;

/// Turns an `impl` block into a generic server.
///
/// ```text
/// #[gen_server]
/// impl Echo {
///     async fn init(arg: A) -> Result<Self, E>                   // required; or -> Self
///     async fn terminate(&mut self, reason: &ExitReason)          // optional
///
///     #[install("echo")]                                           // a call/cast handler
///     async fn echo(&mut self, body: B) -> R
///
///     #[info]                                                      // a raw-message handler
///     async fn on_tick(&mut self, tick: Tick)
///
///     #[fallback]                                                  // dynamic calls no name matches
///     async fn other(&mut self, name: String, body: Value) -> Value
/// }
/// ```
///
/// See the `ferrotp` crate's `gen_server` module and the guide's "GenServer" chapter (every
/// accepted signature, in one table) for the full rules, and its "Under the hood" appendix for
/// what the macro writes.
#[proc_macro_attribute]
pub fn gen_server(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::gen_server(args.into(), input.into()).into()
}

/// Marks a method of a `#[gen_server]` impl block as the handler for calls and casts named by the
/// string: `#[install("ping")]`. Add `local` (`#[install("ping", local)]`) for a handler whose
/// types are not serde types: it is then reachable through the typed client only. Add `task`
/// (`#[install("sort", task)]`, `task(replace)`, `task(ignore, limit = 8)`) for a handler whose
/// work runs beside the server's loop: a plain `fn` returning `impl Future<Output = R> + Send +
/// 'static`, with a per-caller strategy (queue, replace or ignore).
#[proc_macro_attribute]
pub fn install(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_gen_server("install", input)
}

/// Marks a method of a `#[gen_server]` impl block as the handler for raw mailbox messages of its
/// argument's type (OTP's `handle_info`).
#[proc_macro_attribute]
pub fn info(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_gen_server("info", input)
}

/// Marks a method of a `#[gen_server]` impl block as periodic work: `#[background(every = "1s")]`
/// runs it every period, the first a period after `init`, as a message to the server (so it never
/// runs at the same time as a handler), until the server stops.
#[proc_macro_attribute]
pub fn background(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_gen_server("background", input)
}

/// Marks a method of a `#[gen_server]` impl block as its error hook:
/// `async fn on_error(&mut self, failure: Failure) -> OnError`, called when an `#[install]`
/// handler returns `Err` or panics, to decide whether the server crashes or goes on.
#[proc_macro_attribute]
pub fn on_error(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_gen_server("on_error", input)
}

/// Marks a method of a `#[gen_server]` impl block as the handler for dynamic calls whose name
/// matches no `#[install]`.
#[proc_macro_attribute]
pub fn fallback(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_gen_server("fallback", input)
}

/// The handler attributes only mean something to `#[gen_server]`, which removes them before they
/// expand; reaching one here means it sits outside such a block.
fn outside_gen_server(name: &str, input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    let message = format!(
        "#[{name}] only works on a method inside a `#[gen_server]` impl block; add #[gen_server] to the impl"
    );
    let error = syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
    quote!(#error #input).into()
}
