//! Panics in user code, caught where the runtime runs it: a panic becomes an exit reason or a
//! start error, and a panicking `Drop` is logged, so that no step of the runtime's own bookkeeping
//! (the exit sequence above all) is ever cut short by user code.
//!
//! Rust's default panic hook prints every panic to stderr before it is caught, which would report
//! each crash twice: once as that message, once as the process's crash report. The node installs
//! a hook ([`silence_process_panics`]) that keeps a panic inside a process for the crash report
//! instead: where it happened, and its backtrace when `RUST_BACKTRACE` asks for one. What the hook
//! keeps waits, on the panicking thread, until the panic is caught ([`catch`]); it then waits, by
//! pid, until the process exits or logs the panic.

use std::{
    any::Any,
    backtrace::Backtrace,
    cell::Cell as ThreadCell,
    collections::VecDeque,
    fmt,
    future::Future,
    io::Write,
    panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind},
    pin::Pin,
    sync::{
        Arc, Mutex, Once,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use crate::{
    exit::ExitReason,
    mailbox::lock,
    pid::Pid,
    task::{mark_panicked, self_pid},
};

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).into()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.as_str().into()
    } else {
        "non-string panic payload".into()
    }
}

/// Runs `f`, turning a panic into `Err` with its message.
#[inline(always)]
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Arc<str>> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        caught();
        panic_message(&*payload)
    })
}

/// Drops a user value; a panic in its `Drop` is logged (with `what` the value was) instead of
/// unwinding into the runtime.
pub(crate) fn drop_quietly<T>(value: T, what: &'static str) {
    if let Err(message) = catch(move || drop(value)) {
        drop_panicked(self_pid(), &message, what);
    }
}

/// Logs a panic in a `Drop` that the runtime caught and ignores, with where it happened when the
/// hook kept that (`pid` is the process it happened in, if any).
#[cold]
pub(crate) fn drop_panicked(pid: Option<Pid>, message: &str, what: &str) {
    let site = pid.and_then(|pid| take_site(pid, Some(message), false));
    tracing::error!(
        pid = pid.map(tracing::field::display),
        %message,
        location = site
            .as_ref()
            .and_then(Site::location)
            .map(tracing::field::display),
        what,
        "a Drop implementation panicked; the panic is ignored"
    );
}

/// Where a panic in a process happened, and its backtrace when `RUST_BACKTRACE` asks for one:
/// what Rust's default panic hook would have printed, kept by the node's hook (see
/// [`silence_process_panics`]) until the process's crash report is written.
pub(crate) struct Site {
    pid: Pid,
    message: Arc<str>,
    location: Option<String>,
    backtrace: Option<Trace>,
    /// Printed by the hook installed before, the node's hook having let it through.
    printed: bool,
}

impl Site {
    /// The file, line and column of the panic.
    pub(crate) fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// The backtrace, when one was asked for.
    pub(crate) fn backtrace(&self) -> Option<&Trace> {
        self.backtrace.as_ref()
    }
}

/// A backtrace printed as `RUST_BACKTRACE` asks: in full for `full`; otherwise, as Rust's default
/// hook does, only from the panic to the process's task (where the runtime polls the process),
/// without the frames of the panic machinery above or of tokio below.
pub(crate) struct Trace {
    backtrace: Backtrace,
    full: bool,
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // On a line of its own: the log line it ends is long already.
        if self.full {
            return write!(f, "\n{:#}", self.backtrace);
        }
        let text = self.backtrace.to_string();
        // Each frame is a numbered line with its symbol, then lines saying where it is.
        let mut frames: Vec<(&str, Vec<&str>)> = Vec::new();
        for line in text.lines() {
            match line.trim_start().split_once(": ") {
                Some((number, symbol)) if number.bytes().all(|b| b.is_ascii_digit()) => {
                    frames.push((symbol, Vec::new()))
                }
                _ => match frames.last_mut() {
                    Some((_, rest)) => rest.push(line),
                    None => return write!(f, "\n{text}"),
                },
            }
        }
        let first = frames
            .iter()
            .position(|(symbol, _)| symbol.contains("__rust_end_short_backtrace"))
            .map_or(0, |end| end + 1);
        let last = frames[first..]
            .iter()
            .position(|(symbol, _)| {
                // The process's task (`ferrotp::…::task::ProcessTask`): below it is tokio.
                symbol.contains("::task::ProcessTask<")
                    || symbol.contains("__rust_begin_short_backtrace")
            })
            .map_or(frames.len(), |at| first + at + 1);
        for (number, (symbol, rest)) in frames[first..last].iter().enumerate() {
            write!(f, "\n{number:4}: {symbol}")?;
            for line in rest {
                write!(f, "\n{line}")?;
            }
        }
        if last < frames.len() {
            write!(
                f,
                "\n      (RUST_BACKTRACE=full shows the frames omitted here)"
            )?;
        }
        Ok(())
    }
}

thread_local! {
    /// The panic this thread is unwinding from, silenced by the hook and not yet caught.
    static UNWINDING: ThreadCell<Option<Site>> = const { ThreadCell::new(None) };
}

/// Sites of caught panics whose process has not exited yet. Only panics in processes land here,
/// and only under the node's hook; each leaves when its process exits. Bounded, in case a process
/// catches its own panics (which never end it) over and over: the oldest go first.
static SITES: Mutex<VecDeque<Site>> = Mutex::new(VecDeque::new());
const MAX_SITES: usize = 256;
/// How many sites `SITES` holds: the exit of every process reads this, and looks no further when
/// it is 0.
static SITE_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Installs, once per program, a panic hook that leaves a panic inside a process to the runtime:
/// the panic is caught there and becomes the process's exit reason, and the process's crash
/// report (one `warn` event) carries its message, its location and, when `RUST_BACKTRACE` asks
/// for one, its backtrace. Rust's default message would only say the same thing twice.
///
/// Every other panic goes to the hook installed before: a panic in `main`, in a plain tokio task
/// or thread, in a `Drop` run outside a process's poll, a panic while unwinding from another
/// (which aborts the program), and every panic when panics abort (`panic = "abort"`), since no
/// crash report would follow.
pub(crate) fn silence_process_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !keep_for_crash_report(info) {
                previous(info);
            }
        }));
    });
}

/// The hook's decision: `true` when the panic is kept for the crash report of the process it
/// happened in. Never panics (a panic in a panic hook aborts the program).
fn keep_for_crash_report(info: &PanicHookInfo<'_>) -> bool {
    if cfg!(panic = "abort") {
        return false;
    }
    let Some(pid) = self_pid() else {
        return false;
    };
    let backtrace = match std::env::var_os("RUST_BACKTRACE") {
        Some(value) if value != "0" => Some(Trace {
            backtrace: Backtrace::force_capture(),
            full: value == "full",
        }),
        _ => None,
    };
    let site = Site {
        pid,
        message: panic_message(info.payload()),
        location: info.location().map(ToString::to_string),
        backtrace,
        printed: false,
    };
    let panicked_in_this_poll = mark_panicked();
    let Ok(earlier) = UNWINDING.try_with(ThreadCell::take) else {
        return false;
    };
    match earlier {
        // A second panic of the process in this poll before the first was caught: most likely
        // one in a `Drop` while unwinding, which aborts the program (else one after a panic the
        // process caught itself). Everything is printed, the earlier panic too, which an abort
        // would otherwise hide.
        Some(earlier) if earlier.pid == pid && panicked_in_this_poll => {
            if !earlier.printed {
                let _ = writeln!(
                    std::io::stderr(),
                    "process {pid} panicked at {}:\n{}\n(printed here because it panicked again, \
                     as follows, before that panic was caught)",
                    earlier.location().unwrap_or("an unknown location"),
                    earlier.message,
                );
            }
            let site = Site {
                printed: true,
                ..site
            };
            let _ = UNWINDING.try_with(|unwinding| unwinding.set(Some(site)));
            false
        }
        // Nothing, or a panic that a process caught itself (which no crash report follows) in
        // an earlier poll.
        _ => UNWINDING
            .try_with(|unwinding| unwinding.set(Some(site)))
            .is_ok(),
    }
}

/// Moves the site of the panic just caught on this thread (if the hook kept one) to `SITES`,
/// where the crash report of its process finds it.
#[cold]
fn caught() {
    let Ok(Some(site)) = UNWINDING.try_with(ThreadCell::take) else {
        return;
    };
    let mut sites = lock(&SITES);
    if sites.len() == MAX_SITES {
        sites.pop_front();
    }
    sites.push_back(site);
    SITE_COUNT.store(sites.len(), Ordering::Relaxed);
}

/// The site of the panic that `pid` exits with, if it exits with one and the hook kept it;
/// forgets every other panic of `pid` (caught and survived). The exit sequence of every process
/// calls this.
#[inline]
pub(crate) fn crash_site(pid: Pid, reason: &ExitReason) -> Option<Site> {
    if SITE_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let message = match reason {
        ExitReason::Panic(message) => Some(&**message),
        _ => None,
    };
    take_site(pid, message, true)
}

/// Takes out of `SITES` the oldest site of `pid` whose message is `message` (the first of two
/// panics with the same message is the one that decided the exit reason); with `forget_others`,
/// every other site of `pid` goes too.
#[cold]
fn take_site(pid: Pid, message: Option<&str>, forget_others: bool) -> Option<Site> {
    if SITE_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let mut sites = lock(&SITES);
    let index = sites
        .iter()
        .position(|site| site.pid == pid && Some(&*site.message) == message);
    let site = index.and_then(|index| sites.remove(index));
    if forget_others {
        sites.retain(|site| site.pid != pid);
    }
    SITE_COUNT.store(sites.len(), Ordering::Relaxed);
    site
}

pin_project_lite::pin_project! {
    /// A future whose panics come out as `Err` with the panic message, after the `on_panic` hook
    /// has run. Made for `async` blocks and functions, whose locals the unwinding itself drops (a
    /// reply token among them, whose drop marks its process stopping first): what is left is
    /// inert. The hook is a type parameter, so that a function item costs no space: this wraps
    /// every message a server handles, inside every server's task.
    pub(crate) struct CatchUnwind<F, H> {
        #[pin]
        future: F,
        on_panic: H,
    }
}

impl<F: Future> CatchUnwind<F, fn()> {
    pub(crate) fn new(future: F) -> CatchUnwind<F, impl FnMut()> {
        CatchUnwind::with_hook(future, || {})
    }
}

impl<F: Future, H: FnMut()> CatchUnwind<F, H> {
    /// Runs `on_panic` after a panic.
    pub(crate) fn with_hook(future: F, on_panic: H) -> Self {
        CatchUnwind { future, on_panic }
    }
}

impl<F: Future, H: FnMut()> Future for CatchUnwind<F, H> {
    type Output = Result<F::Output, Arc<str>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        match catch(|| future.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(message) => {
                (this.on_panic)();
                Poll::Ready(Err(message))
            }
        }
    }
}
