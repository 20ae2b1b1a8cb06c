//! Children for supervision tests: they report their starts and stops to a witness process, so a
//! test can see exactly what a supervisor did, in order.

use std::time::Duration;

use ferrotp::prelude::*;

/// What a test child tells its witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The child `id` started.
    Started(&'static str),
    /// The child `id` ran its `terminate` with this reason.
    Terminated(&'static str, ExitReason),
}

impl Event {
    /// What a child `id` reports when its `crash` handler panics: its `terminate` runs with the
    /// panic.
    pub fn crashed(id: &'static str) -> Self {
        Event::Terminated(
            id,
            ExitReason::Panic(format!("{id} crashed on purpose").into()),
        )
    }
}

/// A test child's start argument.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Its id, echoed in its events.
    pub id: &'static str,
    /// Where its events go.
    pub witness: Pid,
    /// `init` fails with this message.
    pub fail: Option<&'static str>,
    /// `terminate` takes this long (to test shutdown timeouts).
    pub slow_terminate: Option<Duration>,
}

impl Setup {
    /// A child that starts and stops promptly.
    pub fn new(id: &'static str, witness: Pid) -> Self {
        Setup {
            id,
            witness,
            fail: None,
            slow_terminate: None,
        }
    }
}

/// A gen_server child that reports to its witness.
pub struct Worker {
    setup: Setup,
}

#[gen_server]
impl Worker {
    async fn init(setup: Setup, ctx: &mut Context) -> Result<Self, String> {
        if let Some(why) = setup.fail {
            return Err(why.to_string());
        }
        // Trapping exits makes an exit signal from the supervisor run `terminate`, as in OTP.
        ctx.trap_exit(true);
        send(setup.witness, Event::Started(setup.id));
        Ok(Worker { setup })
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        if let Some(delay) = self.setup.slow_terminate {
            tokio::time::sleep(delay).await;
        }
        send(
            self.setup.witness,
            Event::Terminated(self.setup.id, reason.clone()),
        );
    }

    /// Panics: an abnormal exit.
    #[install("crash")]
    async fn crash(&mut self) {
        panic!("{} crashed on purpose", self.setup.id)
    }

    /// Stops normally.
    #[install("finish")]
    async fn finish(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }

    #[install("id")]
    async fn id(&mut self) -> String {
        self.setup.id.to_string()
    }
}

/// Receives the next test event.
pub async fn next_event(ctx: &mut Context) -> Event {
    ctx.receive::<Event>().await
}

/// Receives `n` test events.
pub async fn events(ctx: &mut Context, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        events.push(next_event(ctx).await);
    }
    events
}

/// Asserts that no test event is waiting.
pub fn assert_quiet(ctx: &Context) {
    assert_eq!(ctx.mailbox_len(), 0, "no further events expected");
}
