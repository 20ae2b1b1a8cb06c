//! Code generation for `#[gen_server]`.
//!
//! For `impl Echo { ... }` it emits, next to the user's impl block (minus the handler attributes):
//! - `EchoClient`, the typed client (one async method per handler, plus `_timeout` and `cast_`
//!   forms) holding an address (a pid or a registered name), which `ServerRef<Echo>` and
//!   `NamedRef<Echo>` dereference to;
//! - inside an anonymous `const _: () = { ... }` block, so nothing else leaks into the user's
//!   namespace: the call enum (one variant per handler), one dispatch function per handler, and the
//!   `GenServer` impl whose `__dispatch` matches typed calls exhaustively, dynamic calls by name (an
//!   unknown name goes to the fallback or answers `UnknownHandler`), and info messages by type.
//!
//! After an error the same items are emitted, so that the user's code that starts and calls the
//! server still type-checks and the user sees only the macro's own errors: a handler in error
//! keeps client methods taking the values its signature names today, answered by nothing; an
//! `init` in error (or none) leaves a `__init` that never finishes; a generic server gets a
//! `GenServer` impl with its generics and nothing to dispatch. None of it runs, as the crate does
//! not compile.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{Ident, ItemImpl, Type};

use crate::{
    ast::{self, Handler, Method, Param, Server},
    attr::Task,
    ctxt::Ctxt,
    signature::borrows,
    tokens::span_of,
};

pub(crate) fn gen_server(args: TokenStream, input: TokenStream) -> TokenStream {
    let cx = Ctxt::default();
    if !args.is_empty() {
        cx.error(
            &args,
            "#[gen_server] takes no arguments: write `#[gen_server]`",
        );
    }
    let mut item: ItemImpl = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => {
            // Another kind of item gets one error saying where the attribute goes; an impl block
            // syn cannot read keeps syn's. The item itself stays, so code naming it still
            // resolves.
            let error = match syn::parse2::<syn::Item>(input.clone()) {
                Ok(syn::Item::Impl(_)) | Err(_) => error,
                Ok(_) => syn::Error::new(
                    error.span(),
                    "#[gen_server] goes on the impl block of the server's methods: \
                     `#[gen_server] impl MyServer { ... }`",
                ),
            };
            let error = error.to_compile_error();
            return quote!(#input #error);
        }
    };
    let server = ast::parse(&cx, &mut item);
    // The user's impl block and the generated items are emitted even after an error, so that one
    // mistake does not bury the rest of the code under "method not found" and "trait bound not
    // satisfied" errors.
    let generated = server.as_ref().map(generate);
    let errors = cx.into_compile_errors();
    quote!(#item #generated #errors)
}

fn generate(server: &Server) -> TokenStream {
    let self_ty = &server.self_ty;
    let client = format_ident!("{}Client", server.ident);
    let client_doc = format!(
        "The typed client of the `{}` gen_server: one method per handler. \
         `ServerRef<{}>` dereferences to it.",
        server.ident, server.ident
    );
    let live: Vec<&Handler> = server.handlers.iter().filter(|h| h.live).collect();
    let variants = live.iter().map(|h| {
        let ident = &h.method.ident;
        let body = &h.method.body;
        let reply = &h.method.ret.reply;
        match h.task {
            Some(_) => quote!(#ident(#body, ::ferrotp::gen_server::TaskReply<#reply>)),
            None => quote!(#ident(#body, ::ferrotp::ReplyTo<#reply>)),
        }
    });
    let client_methods = server.handlers.iter().filter(|h| h.client).map(|h| {
        if h.live {
            client_methods(h)
        } else {
            stub_client_methods(h)
        }
    });
    let hooked = server.on_error.is_some();
    let handler_fns = live.iter().map(|h| handler_fn(self_ty, h, hooked));
    // A failed task goes to the error hook (or the default decision) through the dispatch.
    let task_failure_arm = live.iter().any(|h| h.task.is_some()).then(|| {
        quote! {
            if message.is::<::ferrotp::gen_server::TaskFailed>() {
                return ::ferrotp::gen_server::__on_task_failure(self, message, ctx).await;
            }
        }
    });
    let on_error = server.on_error.as_ref().map(|hook| {
        let ident = &hook.ident;
        let args = call_args(hook, quote!(failure));
        let call = quote_spanned!(ident.span()=> self.#ident(#args).await);
        quote! {
            #[allow(unused_variables)]
            fn __on_error(
                &mut self,
                failure: ::ferrotp::gen_server::Failure,
                ctx: &mut ::ferrotp::Context,
            ) -> impl ::core::future::Future<Output = ::ferrotp::gen_server::OnError> + ::core::marker::Send {
                async move {
                    let decision: ::ferrotp::gen_server::OnError = #call;
                    decision
                }
            }
        }
    });
    // Whether the caller of a typed call gave up before the server took it: then it is not run.
    let gave_up = if live.is_empty() {
        quote!(match *self {})
    } else {
        let arms = live.iter().map(|h| {
            let ident = &h.method.ident;
            quote!(__Call::#ident(_, reply_to) => reply_to.__gave_up())
        });
        quote!(match self { #(#arms,)* })
    };
    // What a traced message is, for its span: the handler's name, its caller, call or cast.
    // (With no handlers there is no typed call to describe.)
    let describe = (!live.is_empty()).then(|| {
        let arms = live.iter().map(|h| {
            let ident = &h.method.ident;
            let name = h.display_name();
            quote!(__Call::#ident(_, reply_to) => ::ferrotp::gen_server::Described::typed(#name, typed.from, reply_to))
        });
        quote! {
            if let ::core::option::Option::Some(typed) = message.downcast_ref::<::ferrotp::gen_server::TypedCall<__Call>>() {
                return match &typed.call { #(#arms,)* };
            }
        }
    });
    let typed_arms = live.iter().map(|h| {
        let ident = &h.method.ident;
        let handle = handle_ident(ident);
        let tasks = h.task.as_ref().map(|_| quote!(tasks,));
        quote!(__Call::#ident(body, reply_to) => #handle(self, ctx, #tasks from, body, reply_to).await)
    });
    // With no handlers the call enum is empty and matching it already diverges.
    let typed_return = (!live.is_empty()).then(|| quote!(return));
    let dynamic = || live.iter().filter(|h| !h.local);
    let dynamic_arms = dynamic().map(|h| dynamic_arm(h));
    let unknown_arm = unknown_arm(server);
    let names = dynamic().map(|h| &h.name);
    let infos = server.infos.iter().map(info_arm);
    let background_arm = background_arm(server);
    let periods = server
        .background
        .iter()
        .map(|(_, ms)| quote!(::core::time::Duration::from_millis(#ms)));
    let (init_fn, init_error, arg) = init(server);
    let terminate = server.terminate.as_ref().filter(|t| t.ok).map(|t| {
        let method = &t.ident;
        let args = call_args(t, quote!(reason));
        quote!(self.#method(#args).await;)
    });

    // A generic server (refused) still implements `GenServer`, with its generics and the bounds
    // the trait needs, whatever bounds the user wrote.
    let mut generics = server.generics.clone();
    if !generics.params.is_empty() {
        let predicates = &mut generics.make_where_clause().predicates;
        predicates.push(syn::parse_quote!(#self_ty: ::core::marker::Send + 'static));
        if let Some(arg) = &arg {
            predicates.push(syn::parse_quote!(#arg: ::core::marker::Send + 'static));
        }
    }
    let (impl_generics, _, where_clause) = generics.split_for_impl();

    // Inherent, so that `Echo::start(arg)` works without importing the `GenServer` trait. When
    // `init` is in error and its argument type unknown, they take anything.
    let starters = (!server.own_start).then(|| {
        let (generic, arg, forward) = match arg {
            Some(_) => (
                None,
                quote!(<Self as ::ferrotp::GenServer>::Arg),
                quote!(arg),
            ),
            None => (Some(quote!(<__A>)), quote!(__A), quote!(())),
        };
        quote! {
            #[allow(unreachable_pub, unused_variables)]
            impl #impl_generics #self_ty #where_clause {
                /// Starts the server; awaiting the returned `Start` runs `init` in the new process.
                pub fn start #generic(arg: #arg) -> ::ferrotp::Start<Self> {
                    <Self as ::ferrotp::GenServer>::start(#forward)
                }

                /// Starts the server linked to the calling process.
                pub fn start_link #generic(arg: #arg) -> ::ferrotp::Start<Self> {
                    <Self as ::ferrotp::GenServer>::start_link(#forward)
                }
            }
        }
    });
    let arg = arg.unwrap_or_else(|| quote!(()));

    quote! {
        #starters

        #[doc = #client_doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[allow(unreachable_pub)]
        pub struct #client {
            to: ::ferrotp::gen_server::Addr,
        }

        const _: () = {
            #[allow(non_camel_case_types)]
            enum __Call {
                #(#variants,)*
            }

            impl __Call {
                fn __gave_up(&self) -> bool {
                    #gave_up
                }
            }

            impl ::ferrotp::gen_server::ServerClient for #client {
                fn __new(to: ::ferrotp::gen_server::Addr) -> Self {
                    #client { to }
                }

                fn __addr(&self) -> ::ferrotp::gen_server::Addr {
                    self.to
                }
            }

            #[allow(private_interfaces, unreachable_pub)]
            impl #client {
                #(#client_methods)*
            }

            #(#handler_fns)*

            impl #impl_generics ::ferrotp::GenServer for #self_ty #where_clause {
                type Arg = #arg;
                type InitError = #init_error;
                type Client = #client;
                const HANDLERS: &'static [&'static str] = &[#(#names),*];
                const BACKGROUND: &'static [::core::time::Duration] = &[#(#periods),*];

                #init_fn

                #[allow(unused_variables)]
                fn __dispatch(
                    &mut self,
                    message: ::ferrotp::Message,
                    ctx: &mut ::ferrotp::Context,
                    tasks: &mut ::ferrotp::gen_server::Tasks,
                ) -> impl ::core::future::Future<Output = ::ferrotp::gen_server::Dispatched> + ::core::marker::Send {
                    async move {
                    // Each kind of message is checked before it is taken out of the message, so
                    // that no `Result` of a downcast stays in this future across the handler's
                    // await.
                    if message.is::<::ferrotp::gen_server::TypedCall<__Call>>() {
                        let typed = ::ferrotp::gen_server::__unbox::<::ferrotp::gen_server::TypedCall<__Call>>(message);
                        let from = ::ferrotp::gen_server::__sender(typed.from);
                        // Matched in its box: the handler's arguments are moved straight out,
                        // not through a local that would stay in this future.
                        #typed_return match typed.call {
                            #(#typed_arms,)*
                        };
                    }
                    if message.is::<::ferrotp::gen_server::__DynamicCall>() {
                        let mut call = ::ferrotp::gen_server::__unbox::<::ferrotp::gen_server::__DynamicCall>(message);
                        return match call.name.as_str() {
                            #(#dynamic_arms)*
                            _ => #unknown_arm,
                        };
                    }
                    #task_failure_arm
                    #background_arm
                    #(#infos)*
                    ::ferrotp::gen_server::Dispatched::Unexpected(message)
                    }
                }

                fn __describe(message: &::ferrotp::Message) -> ::ferrotp::gen_server::Described {
                    #describe
                    ::ferrotp::gen_server::Described::other(message)
                }

                fn __gave_up(message: &::ferrotp::Message) -> bool {
                    if let ::core::option::Option::Some(typed) = message.downcast_ref::<::ferrotp::gen_server::TypedCall<__Call>>() {
                        return typed.call.__gave_up();
                    }
                    message
                        .downcast_ref::<::ferrotp::gen_server::__DynamicCall>()
                        .is_some_and(|call| call.reply_to.__gave_up())
                }

                #on_error

                #[allow(unused_variables)]
                async fn __terminate(&mut self, reason: &::ferrotp::ExitReason, ctx: &mut ::ferrotp::Context) {
                    #terminate
                }
            }
        };
    }
}

fn handle_ident(method: &Ident) -> Ident {
    format_ident!("__ferrotp_handle_{}", method)
}

/// The arguments a user method is called with, in its declared order.
fn call_args(method: &Method, body: TokenStream) -> TokenStream {
    let args = method.params.iter().map(|param| match param {
        Param::Context => quote!(ctx),
        Param::Caller => caller_arg(method),
        Param::From => quote!(from.unwrap_or(::ferrotp::Pid::ROOT)),
        Param::Body => body.clone(),
        Param::Name => quote!(name),
    });
    quote!(#(#args),*)
}

/// The caller handed to a method's `&mut Caller<X>` parameter. Generated code holds a
/// `Caller<R>` for the reply type `R`; going through `CallerOf` with the parameter's own tokens
/// makes an `X` other than `R` an error at the parameter that names the reply type.
fn caller_arg(method: &Method) -> TokenStream {
    let Some(caller_ty) = &method.caller else {
        return quote!(&mut caller);
    };
    let reply = &method.ret.reply;
    let span = span_of(caller_ty);
    let check = quote_spanned!(span=> ::ferrotp::gen_server::CallerOf<'_, #reply>);
    quote_spanned!(span=> <#caller_ty as #check>::__of(&mut caller))
}

/// The user's method called and its return value made a `Reply`.
fn invoke(method: &Method, receiver: TokenStream) -> TokenStream {
    let ident = &method.ident;
    let args = call_args(method, quote!(body));
    let call = quote_spanned!(ident.span()=> #receiver.#ident(#args).await);
    if method.ret.flow {
        call
    } else {
        quote!(::ferrotp::Reply::Reply(#call))
    }
}

fn finish(handler_name: TokenStream, method: &Method) -> TokenStream {
    if method.ret.fallible {
        quote!(::ferrotp::gen_server::__finish_fallible(#handler_name, caller, reply))
    } else {
        quote!(::ferrotp::gen_server::__finish(caller, reply))
    }
}

/// One function per handler, shared by the typed and the dynamic path.
///
/// A function returning an `async` block rather than an `async fn`, with as much as possible done
/// before the block: everything the block captures is stored in its future for its whole life,
/// and this future is part of every server process's task. So the caller is built outside (an
/// `async fn` would keep the token both as an argument and inside the caller), and unless the
/// handler borrows the caller, the user's method is called outside too and its future polled in
/// place by [`Handling`](ferrotp::gen_server::Handling), so that its arguments are stored once.
fn handler_fn(self_ty: &Type, handler: &Handler, hooked: bool) -> TokenStream {
    if let Some(task) = &handler.task {
        return task_fn(self_ty, handler, task, hooked);
    }
    if hooked {
        return hooked_fn(self_ty, handler);
    }
    let method = &handler.method;
    let handle = handle_ident(&method.ident);
    let body = &method.body;
    let reply_ty = &method.ret.reply;
    let name = &handler.name;
    let finish = finish(quote!(#name), method);
    let signature = handler_signature(self_ty, &handle, body, reply_ty);
    if method.params.contains(&Param::Caller) {
        let invoke = invoke(method, quote!(this));
        return quote! {
            #signature {
                let mut caller = ::ferrotp::Caller::__new(from, reply_to);
                async move {
                    let reply = #invoke;
                    #finish
                }
            }
        };
    }
    let ident = &method.ident;
    let args = call_args(method, quote!(body));
    let work = quote_spanned!(ident.span()=> this.#ident(#args));
    let reply = if method.ret.flow {
        quote!(reply)
    } else {
        quote!(::ferrotp::Reply::Reply(reply))
    };
    quote! {
        #signature {
            let caller = ::ferrotp::Caller::__new(from, reply_to);
            ::ferrotp::gen_server::__handling(#work, caller, |caller, reply| {
                let reply = #reply;
                #finish
            })
        }
    }
}

/// The signature of a (not task) handler's function: the server, its context, the caller's pid,
/// the body and the reply token, to the dispatch's outcome.
fn handler_signature(self_ty: &Type, handle: &Ident, body: &Type, reply_ty: &Type) -> TokenStream {
    quote! {
        #[allow(unused_variables, unused_mut, non_snake_case)]
        fn #handle<'a>(
            this: &'a mut #self_ty,
            ctx: &'a mut ::ferrotp::Context,
            from: ::core::option::Option<::ferrotp::Pid>,
            body: #body,
            reply_to: ::ferrotp::ReplyTo<#reply_ty>,
        ) -> impl ::core::future::Future<Output = ::ferrotp::gen_server::Dispatched> + ::core::marker::Send + 'a
    }
}

/// A handler's function in a server with an `#[on_error]` hook: the handler's panic is caught
/// with the caller's token outside it, and the hook decides on a panic or an `Err` before the
/// caller hears anything.
fn hooked_fn(self_ty: &Type, handler: &Handler) -> TokenStream {
    let method = &handler.method;
    let handle = handle_ident(&method.ident);
    let body = &method.body;
    let reply_ty = &method.ret.reply;
    let name = &handler.name;
    let invoke = invoke(method, quote!(this));
    let finish = finish(quote!(#name), method);
    let on_error =
        quote!(<#self_ty as ::ferrotp::GenServer>::__on_error(this, failure.clone(), ctx).await);
    let check_error = method.ret.fallible.then(|| {
        quote! {
            if let ::core::option::Option::Some(error) = ::ferrotp::gen_server::__failed(&reply) {
                let failure = ::ferrotp::gen_server::Failure::__error(#name, caller.pid(), error);
                let decision = #on_error;
                return ::ferrotp::gen_server::__after_error(caller, reply, &failure, decision);
            }
        }
    });
    let signature = handler_signature(self_ty, &handle, body, reply_ty);
    quote! {
        #signature {
            let mut caller = ::ferrotp::Caller::__new(from, reply_to);
            async move {
                let caught = ::ferrotp::gen_server::__catch(async { #invoke }).await;
                let reply = match caught {
                    ::core::result::Result::Ok(reply) => reply,
                    ::core::result::Result::Err(panic) => {
                        let failure = ::ferrotp::gen_server::Failure::__panic(#name, caller.pid(), panic);
                        let decision = #on_error;
                        return ::ferrotp::gen_server::__after_panic(caller, &failure, decision);
                    }
                };
                #check_error
                #finish
            }
        }
    }
}

/// A task handler's function: the request goes to the server's tasks, which refuse, queue or
/// start it; the user's method runs only if it is not refused, and returns the task.
fn task_fn(self_ty: &Type, handler: &Handler, task: &Task, hooked: bool) -> TokenStream {
    let method = &handler.method;
    let handle = handle_ident(&method.ident);
    let body = &method.body;
    let reply_ty = &method.ret.reply;
    let name = &handler.name;
    let strategy = &task.strategy;
    let limit = match &task.limit {
        Some(limit) => {
            let limit = proc_macro2::Literal::usize_unsuffixed(*limit);
            quote!(#limit)
        }
        None => quote!(::ferrotp::gen_server::DEFAULT_TASK_LIMIT),
    };
    let ident = &method.ident;
    let args = call_args(method, quote!(body));
    let work = quote_spanned!(ident.span()=> this.#ident(#args));
    let failed = if method.ret.fallible {
        quote!(::ferrotp::gen_server::__task_failed)
    } else {
        quote!(::ferrotp::gen_server::__task_never_fails)
    };
    quote! {
        #[allow(unused_variables, unused_mut, non_snake_case)]
        fn #handle<'a>(
            this: &'a mut #self_ty,
            ctx: &'a mut ::ferrotp::Context,
            tasks: &'a mut ::ferrotp::gen_server::Tasks,
            from: ::core::option::Option<::ferrotp::Pid>,
            body: #body,
            reply_to: ::ferrotp::gen_server::TaskReply<#reply_ty>,
        ) -> impl ::core::future::Future<Output = ::ferrotp::gen_server::Dispatched> + ::core::marker::Send + 'a {
            static SPEC: ::ferrotp::gen_server::TaskSpec = ::ferrotp::gen_server::TaskSpec {
                handler: #name,
                strategy: ::ferrotp::gen_server::Strategy::#strategy,
                limit: #limit,
            };
            let server = ctx.pid();
            // Not a `move` closure: it borrows the server and the context for the call only.
            let failed = tasks.__request(&SPEC, server, from, reply_to, #failed, #hooked, || #work);
            async move {
                match failed {
                    ::core::option::Option::None => ::ferrotp::gen_server::Dispatched::Continue,
                    ::core::option::Option::Some(failed) => {
                        ::ferrotp::gen_server::__on_task_panic(this, failed, ctx).await
                    }
                }
            }
        }
    }
}

fn dynamic_arm(handler: &Handler) -> TokenStream {
    let method = &handler.method;
    let handle = handle_ident(&method.ident);
    let name = &handler.name;
    let body = &method.body;
    let reply_ty = &method.ret.reply;
    let encode = match handler.task {
        Some(_) => encode_task(quote!(#name), reply_ty, method.ret.fallible),
        None => encode(quote!(#name), reply_ty, method.ret.fallible),
    };
    let tasks = handler.task.as_ref().map(|_| quote!(tasks,));
    // Serde bounds are checked here, so point their errors at the user's types.
    let decode =
        quote_spanned!(span_of(body)=> ::ferrotp::gen_server::__decode::<#body>(&mut call));
    quote! {
        #name => {
            let ::core::option::Option::Some(body) = #decode else {
                return ::ferrotp::gen_server::Dispatched::Continue;
            };
            let reply_to = ::ferrotp::gen_server::__reply_to(&mut call, #encode);
            let from = call.from;
            ::core::mem::drop(call);
            #handle(self, ctx, #tasks from, body, reply_to).await
        }
    }
}

/// A task handler's encoder: a refusal becomes the dynamic caller's `CallError`.
fn encode_task(name: TokenStream, reply_ty: &Type, fallible: bool) -> TokenStream {
    let span = span_of(reply_ty);
    let encode = if fallible {
        quote_spanned!(span=> ::ferrotp::gen_server::__encode_result(#name, reply))
    } else {
        quote_spanned!(span=> ::ferrotp::gen_server::__encode(#name, reply))
    };
    quote_spanned! {span=>
        |reply: ::core::result::Result<#reply_ty, ::ferrotp::gen_server::Refusal>| match reply {
            ::core::result::Result::Ok(reply) => #encode,
            ::core::result::Result::Err(refusal) => ::core::result::Result::Err(refusal.into()),
        }
    }
}

fn encode(name: TokenStream, reply_ty: &Type, fallible: bool) -> TokenStream {
    let span = span_of(reply_ty);
    if fallible {
        quote_spanned!(span=> |reply: #reply_ty| ::ferrotp::gen_server::__encode_result(#name, reply))
    } else {
        quote_spanned!(span=> |reply: #reply_ty| ::ferrotp::gen_server::__encode(#name, reply))
    }
}

fn unknown_arm(server: &Server) -> TokenStream {
    let Some(fallback) = server.fallback.as_ref().filter(|f| f.ok) else {
        return quote! {{
            ::ferrotp::gen_server::__unknown(*call, <Self as ::ferrotp::GenServer>::HANDLERS);
            ::ferrotp::gen_server::Dispatched::Continue
        }};
    };
    let reply_ty = &fallback.ret.reply;
    let encode = encode(quote!("fallback"), reply_ty, fallback.ret.fallible);
    let invoke = invoke(fallback, quote!(self));
    let finish = finish(quote!("fallback"), fallback);
    quote! {{
        let name = ::core::mem::take(&mut call.name);
        let body = ::core::mem::take(&mut call.body);
        let reply_to = ::ferrotp::gen_server::__reply_to(&mut call, #encode);
        let from = call.from;
        ::core::mem::drop(call);
        let mut caller = ::ferrotp::Caller::__new(from, reply_to);
        let reply = #invoke;
        #finish
    }}
}

/// The ticks of the `#[background]` methods, each told by its index in `BACKGROUND`.
fn background_arm(server: &Server) -> Option<TokenStream> {
    if server.background.is_empty() {
        return None;
    }
    let arms = server
        .background
        .iter()
        .enumerate()
        .map(|(i, (method, _))| {
            let invoke = invoke(method, quote!(self));
            quote!(#i => ::ferrotp::gen_server::__info(#invoke),)
        });
    Some(quote! {
        if message.is::<::ferrotp::gen_server::Tick>() {
            let tick = ::ferrotp::gen_server::__unbox::<::ferrotp::gen_server::Tick>(message);
            // The tick is dropped after the method's turn: only then may the next one come.
            return match tick.__index() {
                #(#arms)*
                _ => ::ferrotp::gen_server::Dispatched::Continue,
            };
        }
    })
}

fn info_arm(info: &Method) -> TokenStream {
    let body = &info.body;
    let invoke = invoke(info, quote!(self));
    quote! {
        let message = match message.downcast::<#body>() {
            Ok(body) => return ::ferrotp::gen_server::__info(#invoke),
            Err(message) => message,
        };
    }
}

fn client_methods(handler: &Handler) -> TokenStream {
    let method = &handler.method;
    let ident = &method.ident;
    let timeout_ident = format_ident!("{}_timeout", ident);
    let cast_ident = format_ident!("cast_{}", ident);
    let reply = &method.ret.reply;
    let name = handler.display_name();
    let takes_body = method.params.contains(&Param::Body);
    let body_ty = &method.body;
    // `param`/`forward`: the body in the client methods' signatures; `arg`: the body in the call.
    let (param, forward, arg) = if takes_body {
        (quote!(body: #body_ty,), quote!(body,), quote!(body))
    } else {
        (quote!(), quote!(), quote!(()))
    };
    let output = call_output(reply, method.ret.fallible);
    // The form of the call for a server on another node: by name, its body encoded, found by
    // autoref specialization so that types that are not serde still compile (and are refused
    // across nodes at run time).
    let body_probe = if takes_body {
        quote!(#body_ty)
    } else {
        quote!(())
    };
    let encoder = if handler.local {
        quote!(::core::option::Option::None)
    } else {
        quote!({
            use ::ferrotp::gen_server::{__CanEncode as _, __CannotEncode as _};
            (&&::ferrotp::gen_server::__Probe::<#body_probe>::new()).__encoder()
        })
    };
    let remote = quote! {
        ::ferrotp::gen_server::__remote(self.to, #name, &#arg, #encoder)
    };
    let probe = |ty: TokenStream| {
        quote!({
            use ::ferrotp::gen_server::{__CanDecode as _, __CannotDecode as _};
            (&&::ferrotp::gen_server::__Probe::<#ty>::new()).__decoder()
        })
    };
    // A reply borrowing something (`&'static str`) is never a `DeserializeOwned`, and the probe
    // cannot say so for a lifetime: such a reply is simply not remotable.
    let decoder = if has_reference(reply) {
        quote!(::core::option::Option::None)
    } else if method.ret.fallible {
        let ok = probe(quote!(<#reply as ::ferrotp::gen_server::IsResult>::Ok));
        let err = probe(quote!(<#reply as ::ferrotp::gen_server::IsResult>::Err));
        quote!(#ok.zip(#err))
    } else {
        probe(quote!(#reply))
    };
    let call = match (handler.task.is_some(), method.ret.fallible) {
        (false, false) => quote!(::ferrotp::gen_server::__call),
        (false, true) => quote!(::ferrotp::gen_server::__call_fallible),
        (true, false) => quote!(::ferrotp::gen_server::__call_task),
        (true, true) => quote!(::ferrotp::gen_server::__call_task_fallible),
    };
    let call_doc = format!(
        "Calls the `{ident}` handler (installed as `\"{name}\"`) and waits up to \
         `ferrotp::DEFAULT_TIMEOUT` for its reply."
    );
    let timeout_doc =
        format!("Calls the `{ident}` handler and waits up to `timeout` for its reply.");
    let cast_doc = format!("Casts to the `{ident}` handler: it runs, and its reply is dropped.");
    // Plain functions returning the call's future, not `async fn`s awaiting it: a layer of
    // future less to move at every call, and a future that does not borrow the client.
    quote! {
        #[doc = #call_doc]
        pub fn #ident(&self, #param) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send + 'static {
            self.#timeout_ident(#forward ::ferrotp::DEFAULT_TIMEOUT)
        }

        #[doc = #timeout_doc]
        pub fn #timeout_ident(&self, #param timeout: ::core::time::Duration) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send + 'static {
            let remote = #remote;
            #call(self.to, timeout, remote, #decoder, move |reply_to| __Call::#ident(#arg, reply_to))
        }

        #[doc = #cast_doc]
        pub fn #cast_ident(&self, #param) {
            let remote = #remote;
            ::ferrotp::gen_server::__cast(self.to, remote, move || __Call::#ident(#arg, ::ferrotp::ReplyTo::nobody()))
        }
    }
}

/// The `__init` function, the init error type and the argument type (`None` when `init` is
/// missing or in error and its argument type cannot be named).
fn init(server: &Server) -> (TokenStream, TokenStream, Option<TokenStream>) {
    let Some(method) = &server.init else {
        return (stub_init(), quote!(::core::convert::Infallible), None);
    };
    let arg = &method.body;
    let ret = &method.ret.reply;
    let error = if method.ret.fallible {
        quote!(<#ret as ::ferrotp::gen_server::IsResult>::Err)
    } else {
        quote!(::core::convert::Infallible)
    };
    let arg = method.body_known.then(|| quote!(#arg));
    if !method.ok {
        return (stub_init(), error, arg);
    }
    let ident = &method.ident;
    let args = call_args(method, quote!(arg));
    let call = quote_spanned!(ident.span()=> Self::#ident(#args).await);
    let body = if method.ret.fallible {
        call
    } else {
        quote!(::core::result::Result::Ok(#call))
    };
    let init_fn = quote! {
        #[allow(unused_variables)]
        async fn __init(arg: Self::Arg, ctx: &mut ::ferrotp::Context) -> ::core::result::Result<Self, Self::InitError> {
            #body
        }
    };
    (init_fn, error, arg)
}

/// `__init` for an `init` in error: never finishes, never calls the user's method (the crate does
/// not compile, so it never runs).
fn stub_init() -> TokenStream {
    quote! {
        fn __init(
            _: Self::Arg,
            _: &mut ::ferrotp::Context,
        ) -> impl ::core::future::Future<Output = ::core::result::Result<Self, Self::InitError>> + ::core::marker::Send {
            ::core::future::pending()
        }
    }
}

/// The client methods of a handler in error: the same names, taking the values its signature
/// names today and returning what it returns, so the code calling them type-checks around the
/// handler's error. Their futures never finish (the crate does not compile, so they never run).
fn stub_client_methods(handler: &Handler) -> TokenStream {
    let method = &handler.method;
    let ident = &method.ident;
    let timeout_ident = format_ident!("{}_timeout", ident);
    let cast_ident = format_ident!("cast_{}", ident);
    let (generics, _, where_clause) = method.generics.split_for_impl();
    let values = &method.values;
    let output = call_output(&method.ret.reply, method.ret.fallible);
    // A generic method's types, or a borrowed reply, may not be `'static`; the stub is for
    // type-checking only.
    let lifetime = (method.generics.params.is_empty() && !borrows(&method.ret.reply))
        .then(|| quote!(+ 'static));
    let doc = format!(
        "The client method of the `{ident}` handler (installed as `\"{}\"`), which has an error.",
        handler.display_name()
    );
    quote! {
        #[doc = #doc]
        pub fn #ident #generics(&self, #(_: #values),*) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send #lifetime #where_clause {
            ::core::future::pending()
        }

        #[doc = #doc]
        pub fn #timeout_ident #generics(&self, #(_: #values,)* _: ::core::time::Duration) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send #lifetime #where_clause {
            ::core::future::pending()
        }

        #[doc = #doc]
        pub fn #cast_ident #generics(&self, #(_: #values),*) #where_clause {}
    }
}

/// What a typed call to a handler replying with `reply` resolves to.
/// Whether a type has a reference anywhere in it, `'static` or not.
fn has_reference(ty: &Type) -> bool {
    fn any_ampersand(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Punct(punct) => punct.as_char() == '&',
            proc_macro2::TokenTree::Group(group) => any_ampersand(group.stream()),
            _ => false,
        })
    }
    any_ampersand(quote!(#ty))
}

fn call_output(reply: &Type, fallible: bool) -> TokenStream {
    if fallible {
        quote!(::core::result::Result<
            <#reply as ::ferrotp::gen_server::IsResult>::Ok,
            ::ferrotp::CallError<<#reply as ::ferrotp::gen_server::IsResult>::Err>,
        >)
    } else {
        quote!(::core::result::Result<#reply, ::ferrotp::CallError>)
    }
}
