//! What a call carries beyond its body: the chain of processes blocked on it (a call that would
//! close a cycle fails at once) and its deadline (nested calls inherit it).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use ferrotp::prelude::*;

/// Forwards `hops` along `next`: each server calls the next one, the last answers with the
/// pids it went through.
struct Hop {
    next: Option<ServerRef<Hop>>,
}

#[gen_server]
impl Hop {
    async fn init(next: Option<Pid>) -> Self {
        Hop {
            next: next.map(|pid| ServerRef::from_pid(pid).unwrap()),
        }
    }

    #[install("set_next")]
    async fn set_next(&mut self, next: Pid) {
        self.next = Some(ServerRef::from_pid(next).unwrap());
    }

    /// Calls the next server `hops` more times round; the path it took.
    #[install("forward")]
    async fn forward(&mut self, ctx: &mut Context, hops: u32) -> Result<Vec<Pid>, String> {
        let mut path = vec![ctx.pid()];
        if hops == 0 {
            return Ok(path);
        }
        let next = self.next.ok_or("no next server")?;
        match next.forward(hops - 1).await {
            Ok(rest) => path.extend(rest),
            Err(CallError::Handler(error)) => return Err(error),
            Err(error) => return Err(error.to_string()),
        }
        Ok(path)
    }

    /// The deadline this handler sees, and the one the next server sees.
    #[install("deadlines", local)]
    async fn deadlines(&mut self, ctx: &mut Context) -> Vec<Option<tokio::time::Instant>> {
        let mut seen = vec![ctx.deadline()];
        if let Some(next) = self.next {
            seen.extend(next.deadlines().await.unwrap_or_default());
        }
        seen
    }
}

/// A ring of `n` servers, each calling the next, the last calling the first.
async fn ring(n: usize) -> Vec<ServerRef<Hop>> {
    let mut servers = Vec::new();
    for _ in 0..n {
        servers.push(Hop::start(None).await.unwrap());
    }
    for (i, server) in servers.iter().enumerate() {
        server.set_next(servers[(i + 1) % n].pid()).await.unwrap();
    }
    servers
}

/// The error the last server of the ring gets calling the first: it (the caller) would wait
/// for the first, which waits for the second, and so on back to it.
fn cycle_error(servers: &[ServerRef<Hop>]) -> String {
    let n = servers.len();
    let cycle: Vec<Pid> = (0..n).map(|i| servers[(n - 1 + i) % n].pid()).collect();
    CallError::<std::convert::Infallible>::Deadlock(cycle).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_two_servers_fails_at_once_with_the_cycle() {
    let servers = ring(2).await;
    let started = Instant::now();
    // 0 -> 1 -> 0: the second server's call back to the first would wait forever.
    let reply = servers[0].forward(2).await;
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    assert_eq!(reply, Err(CallError::Handler(cycle_error(&servers))));
    // Both go on serving.
    assert_eq!(servers[1].forward(0).await, Ok(vec![servers[1].pid()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_three_servers_fails_at_once_with_the_cycle() {
    let servers = ring(3).await;
    let reply = servers[0].forward(3).await;
    assert_eq!(reply, Err(CallError::Handler(cycle_error(&servers))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_without_a_cycle_goes_through() {
    let servers = ring(3).await;
    // 0 -> 1 -> 2 and back to the caller: no server is called twice.
    let reply = servers[0].forward(2).await;
    let pids: Vec<Pid> = servers.iter().map(|server| server.pid()).collect();
    assert_eq!(reply, Ok(pids));
    // Again and again: nothing of the first chain stays with the servers.
    for _ in 0..100 {
        assert!(servers[1].forward(2).await.is_ok());
    }
}

#[tokio::test(start_paused = true)]
async fn deadlines_travel_down_a_chain_of_three() {
    let last = Hop::start(None).await.unwrap();
    let middle = Hop::start(Some(last.pid())).await.unwrap();
    let first = Hop::start(Some(middle.pid())).await.unwrap();
    let timeout = Duration::from_millis(300);
    let called = tokio::time::Instant::now();
    let seen = first.deadlines_timeout(timeout).await.unwrap();
    assert_eq!(seen.len(), 3);
    let expected = called + timeout;
    for deadline in seen {
        let deadline = deadline.expect("a deadline at every hop");
        // The same deadline all the way down (give or take the clock read at the call).
        let off = if deadline > expected {
            deadline - expected
        } else {
            expected - deadline
        };
        assert!(off < Duration::from_millis(5), "{off:?}");
    }
}

#[tokio::test]
async fn a_call_with_the_default_timeout_from_outside_a_handler_has_no_deadline_to_show() {
    let server = Hop::start(None).await.unwrap();
    assert_eq!(server.deadlines().await, Ok(vec![None]));
}

/// A deferred reply takes the server out of the chain: calling its caller back later is no
/// cycle.
struct Deferrer {
    waiting: Option<ReplyTo<u32>>,
}

#[gen_server]
impl Deferrer {
    async fn init(_: ()) -> Self {
        Deferrer { waiting: None }
    }

    #[install("wait")]
    async fn wait_here(&mut self, caller: &mut Caller<u32>) -> Reply<u32> {
        self.waiting = Some(caller.defer());
        Reply::NoReply
    }

    /// Calls the asker back while serving its task's call.
    #[install("call_back")]
    async fn call_back(&mut self, asker: Pid) -> Result<u32, String> {
        let asker = ServerRef::<Asker>::from_pid(asker).map_err(|e| e.to_string())?;
        asker.answer().await.map_err(|e| e.to_string())
    }

    /// Asks `other` for the answer and passes it to the deferred caller; whether there was one.
    #[install("ask")]
    async fn ask(&mut self, other: Pid) -> Result<bool, String> {
        let other = ServerRef::<Asker>::from_pid(other).map_err(|e| e.to_string())?;
        let answer = other.answer().await.map_err(|e| e.to_string())?;
        Ok(self.waiting.take().is_some_and(|token| token.send(answer)))
    }
}

/// Calls a deferrer and waits (in a task handler, so that it still answers `answer`).
struct Asker;

#[gen_server]
impl Asker {
    async fn init(_: ()) -> Self {
        Asker
    }

    #[install("go", task)]
    fn go(&self, deferrer: Pid) -> impl Future<Output = Result<u32, String>> + Send + 'static {
        async move {
            let deferrer = ServerRef::<Deferrer>::from_pid(deferrer).map_err(|e| e.to_string())?;
            deferrer.wait_here().await.map_err(|e| e.to_string())
        }
    }

    /// From its task, has the deferrer call this server back: the server is not blocked on its
    /// tasks, so that is no cycle.
    #[install("round", task)]
    fn round(
        &self,
        ctx: &mut Context,
        deferrer: Pid,
    ) -> impl Future<Output = Result<u32, String>> + Send + 'static {
        let me = ctx.pid();
        async move {
            let deferrer = ServerRef::<Deferrer>::from_pid(deferrer).map_err(|e| e.to_string())?;
            deferrer
                .call_back_timeout(me, Duration::from_secs(5))
                .await
                .map_err(|error| error.to_string())
        }
    }

    #[install("answer")]
    async fn answer(&self) -> u32 {
        42
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_handlers_task_calling_its_own_server_back_is_no_cycle() {
    let deferrer = Deferrer::start(()).await.unwrap();
    let asker = Asker::start(()).await.unwrap();
    // From a process, with a timeout of its own: the call carries a context all the way.
    let caller = spawn_handle(move |_| async move {
        asker
            .round_timeout(deferrer.pid(), Duration::from_secs(5))
            .await
    });
    assert_eq!(caller.join().await.unwrap(), Ok(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_reply_and_a_task_handler_are_no_false_positives() {
    let deferrer = Deferrer::start(()).await.unwrap();
    let asker = Asker::start(()).await.unwrap();
    let going = tokio::spawn(async move { asker.go(deferrer.pid()).await });
    // Once the deferrer holds the asker's task's call, it calls the asker back: no cycle (the
    // deferrer's handler that took the call has returned; the asker serves it in a task).
    loop {
        match deferrer.ask(asker.pid()).await {
            Ok(true) => break,
            Ok(false) => tokio::task::yield_now().await,
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(going.await.unwrap(), Ok(42));
}

/// A task handler whose task calls back the process that called it: that process is blocked
/// on the task, so it is a cycle.
struct Echoer;

#[gen_server]
impl Echoer {
    async fn init(_: ()) -> Self {
        Echoer
    }

    #[install("back", task)]
    fn back(&self, caller: Pid) -> impl Future<Output = String> + Send + 'static {
        async move {
            let caller = ServerRef::<Client>::from_pid(caller).unwrap();
            match caller.forward(0).await {
                Ok(_) => "answered".to_owned(),
                Err(error) => error.to_string(),
            }
        }
    }
}

/// Calls an echoer's `back` with itself as the one to call back.
struct Client {
    echoer: ServerRef<Echoer>,
}

#[gen_server]
impl Client {
    async fn init(echoer: Pid) -> Self {
        Client {
            echoer: ServerRef::from_pid(echoer).unwrap(),
        }
    }

    #[install("go")]
    async fn go(&mut self, ctx: &mut Context) -> String {
        self.echoer
            .back(ctx.pid())
            .await
            .unwrap_or_else(|e| e.to_string())
    }

    #[install("forward")]
    async fn forward(&mut self, _hops: u32) -> Vec<Pid> {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_calling_back_the_process_blocked_on_it_is_a_cycle() {
    let echoer = Echoer::start(()).await.unwrap();
    let client = Client::start(echoer.pid()).await.unwrap();
    let started = Instant::now();
    let said = client.go().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    assert!(said.starts_with("deadlock"), "{said}");
}

/// Answers early through a deferred token, then calls its caller back: no longer a cycle.
struct Early;

#[gen_server]
impl Early {
    async fn init(_: ()) -> Self {
        Early
    }

    #[install("relay")]
    async fn relay(&mut self, caller: &mut Caller<String>, back: Pid) -> Reply<String> {
        let token = caller.defer();
        token.send("answered".to_owned());
        let back = ServerRef::<Asking>::from_pid(back).unwrap();
        // The caller no longer waits on this handler: calling it back is no cycle.
        if let Err(error) = back.poke().await {
            panic!("calling back after answering: {error}");
        }
        Reply::NoReply
    }
}

/// Calls `relay`, then answers pokes.
struct Asking {
    pokes: u32,
}

#[gen_server]
impl Asking {
    async fn init(_: ()) -> Self {
        Asking { pokes: 0 }
    }

    #[install("ask")]
    async fn ask(&mut self, ctx: &mut Context, early: Pid) -> String {
        let early = ServerRef::<Early>::from_pid(early).unwrap();
        early
            .relay(ctx.pid())
            .await
            .unwrap_or_else(|e| e.to_string())
    }

    #[install("poke")]
    async fn poke(&mut self) -> u32 {
        self.pokes += 1;
        self.pokes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_answered_early_may_call_its_caller_back() {
    let early = Early::start(()).await.unwrap();
    let asking = Asking::start(()).await.unwrap();
    assert_eq!(asking.ask(early.pid()).await, Ok("answered".to_owned()));
    // The poke came through (and the relay did not panic).
    let mut pokes = 0;
    for _ in 0..1_000 {
        pokes = asking.poke().await.unwrap();
        if pokes > 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(pokes > 1, "the early server's poke never came");
    assert!(ferrotp::is_alive(early.pid()));
}
