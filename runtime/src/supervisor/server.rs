//! The supervisor process: a `#[gen_server]` that starts its children, restarts them by its
//! strategy, and stops them.
//!
//! Three rules keep restarts honest:
//! - a child is started again only once the old one is fully gone, subtree included: a
//!   supervisor child that died without stopping its own children (killed, or its shutdown timed
//!   out) has them stopped by its parent first, from the roster it shared;
//! - a restart that fails is tried again through the supervisor's own mailbox (as OTP does), each
//!   attempt charged to the restart intensity, so the supervisor answers calls meanwhile;
//! - a named child's name stays reserved for the supervisor while it restarts the child, and is
//!   released (failing the calls waiting for it) once the supervisor decides not to.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use super::{
    AutoShutdown, Child, ChildCounts, ChildInfo, ChildKind, DynamicArg, Restart, Roster, Shutdown,
    Strategy, Supervisor, SupervisorError, Template,
    child::{Launch, Listing, Member, StopBy},
};
use crate::{
    context::Context,
    exit::ExitReason,
    gen_server::{GenServer, LookupError, ServerRef, SystemStop},
    link::{Down, Exit, MonitorRef, exit},
    message::Message,
    pid::Pid,
    process, registry,
    request::CallError,
    unwind::{CatchUnwind, catch, drop_quietly},
};

struct Running {
    spec: Child,
    pid: Option<Pid>,
    /// A running supervisor child's list of its own children.
    roster: Option<Arc<Roster>>,
}

/// Sent by a supervisor to itself to try failed restarts again.
struct RetryRestart;

/// The supervisor process's state. Reach it through a [`SupervisorRef`](super::SupervisorRef).
pub struct SupervisorProcess {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    auto_shutdown: AutoShutdown,
    /// Children in start order (keys only grow).
    children: BTreeMap<u64, Running>,
    by_id: HashMap<Arc<str>, u64>,
    by_pid: HashMap<Pid, u64>,
    next: u64,
    /// When the restarts inside the current period happened.
    restarts: VecDeque<Instant>,
    /// Children to be started again after a failed attempt, in start order.
    pending: BTreeSet<u64>,
    /// The running children, shared with this supervisor's own supervisor.
    roster: Arc<Roster>,
    template: Option<Template>,
}

#[crate::gen_server]
impl SupervisorProcess {
    async fn init(spec: Supervisor, ctx: &mut Context) -> Result<Self, SupervisorError> {
        ctx.trap_exit(true);
        let mut sup = SupervisorProcess {
            strategy: spec.strategy,
            max_restarts: spec.max_restarts,
            period: spec.period,
            auto_shutdown: spec.auto_shutdown,
            children: BTreeMap::new(),
            by_id: HashMap::new(),
            by_pid: HashMap::new(),
            next: 0,
            restarts: VecDeque::new(),
            pending: BTreeSet::new(),
            roster: spec.roster.unwrap_or_default(),
            template: spec.template,
        };
        for child in spec.children {
            if let Err(error) = sup.add(child).await {
                sup.stop_all(ctx).await;
                return Err(error);
            }
        }
        Ok(sup)
    }

    async fn terminate(&mut self, reason: &ExitReason, ctx: &mut Context) {
        tracing::debug!(supervisor = %ctx.pid(), %reason, "supervisor stopping its children");
        self.stop_all(ctx).await;
    }

    /// Every child in start order.
    #[install("which_children")]
    async fn which_children(&mut self) -> Vec<ChildInfo> {
        self.children
            .values()
            .map(|child| ChildInfo {
                id: child.spec.id.to_string(),
                pid: child.pid,
                kind: child.spec.kind,
                restart: child.spec.restart,
            })
            .collect()
    }

    #[install("count_children")]
    async fn count_children(&mut self) -> ChildCounts {
        let supervisors = self
            .children
            .values()
            .filter(|c| c.spec.kind == ChildKind::Supervisor)
            .count();
        ChildCounts {
            specs: self.children.len(),
            active: self.children.values().filter(|c| c.pid.is_some()).count(),
            supervisors,
            workers: self.children.len() - supervisors,
        }
    }

    /// The pid of the running child `id`.
    #[install("child_pid")]
    async fn child_pid(&mut self, id: String) -> Result<Pid, SupervisorError> {
        let seq = *self
            .by_id
            .get(id.as_str())
            .ok_or_else(|| SupervisorError::NotFound(id.clone()))?;
        self.children
            .get(&seq)
            .and_then(|c| c.pid)
            .ok_or(SupervisorError::NotRunning(id))
    }

    /// Adds a child and starts it (OTP's `start_child`).
    #[install("start_child", local)]
    async fn start_child(&mut self, child: Child) -> Result<Pid, SupervisorError> {
        self.add(child).await
    }

    /// Starts a child from the dynamic supervisor's template.
    #[install("start_dynamic", local)]
    async fn start_dynamic(&mut self, arg: DynamicArg) -> Result<Pid, SupervisorError> {
        let template = self.template.clone().ok_or(SupervisorError::NotDynamic)?;
        // The template is user code: its panic fails this start only.
        let mut child =
            catch(|| template(arg.0)).map_err(|panic| SupervisorError::StartFailed {
                id: "template".to_owned(),
                reason: ExitReason::Panic(panic),
            })??;
        child.id = format!("{}-{}", child.id, self.next).into();
        self.add(child).await
    }

    /// Stops the child `id`; its specification stays (unless it is temporary), so it can be
    /// restarted with `restart_child`.
    #[install("terminate_child")]
    async fn terminate_child(
        &mut self,
        id: String,
        ctx: &mut Context,
    ) -> Result<(), SupervisorError> {
        let seq = *self
            .by_id
            .get(id.as_str())
            .ok_or(SupervisorError::NotFound(id))?;
        self.stop(seq, ctx).await;
        self.pending.remove(&seq);
        self.release_name(seq, &ExitReason::Shutdown, ctx.pid());
        if self.template.is_some() {
            self.forget(seq, &ExitReason::Shutdown, ctx.pid());
        } else {
            self.forget_if_temporary(seq, &ExitReason::Shutdown, ctx.pid());
        }
        Ok(())
    }

    /// Stops the child with this pid and forgets it (for a dynamic supervisor's children).
    #[install("terminate_pid")]
    async fn terminate_pid(&mut self, pid: Pid, ctx: &mut Context) -> Result<(), SupervisorError> {
        let seq = *self
            .by_pid
            .get(&pid)
            .ok_or_else(|| SupervisorError::NotFound(pid.to_string()))?;
        self.stop(seq, ctx).await;
        self.forget(seq, &ExitReason::Shutdown, ctx.pid());
        Ok(())
    }

    /// Starts again the stopped child `id` (OTP's `restart_child`).
    #[install("restart_child")]
    async fn restart_child(&mut self, id: String) -> Result<Pid, SupervisorError> {
        let seq = self.stopped(&id)?;
        let pid = self
            .launch(seq)
            .await
            .map_err(|reason| SupervisorError::StartFailed { id, reason })?;
        self.pending.remove(&seq);
        Ok(pid)
    }

    /// Forgets the stopped child `id` (OTP's `delete_child`).
    #[install("delete_child")]
    async fn delete_child(&mut self, id: String, ctx: &mut Context) -> Result<(), SupervisorError> {
        let seq = self.stopped(&id)?;
        self.forget(seq, &ExitReason::Shutdown, ctx.pid());
        Ok(())
    }

    /// A linked process exited: a child to restart, or not.
    #[info]
    async fn on_exit(&mut self, exit: Exit, ctx: &mut Context) -> crate::Reply<()> {
        let me = ctx.pid();
        let Some(seq) = self.by_pid.remove(&exit.from) else {
            tracing::debug!(supervisor = %me, from = %exit.from, reason = %exit.reason, "exit signal from a process that is not a child");
            return crate::Reply::NoReply;
        };
        self.roster.remove(exit.from);
        let Some(child) = self.children.get_mut(&seq) else {
            return crate::Reply::NoReply;
        };
        child.pid = None;
        let orphans = child.roster.take();
        let (id, restart, significant) = (
            child.spec.id.clone(),
            child.spec.restart,
            child.spec.significant,
        );
        // A supervisor child that died without stopping its children: stop them first.
        if let Some(orphans) = orphans {
            stop_together(ctx, orphans.take(), None).await;
        }
        if !restart.restarts_after(&exit.reason) {
            tracing::debug!(supervisor = %me, child = %id, reason = %exit.reason, "child exited; not restarted ({restart:?})");
            self.release_name(seq, &exit.reason, me);
            if self.template.is_some() {
                // A dynamic supervisor keeps only children it will restart (OTP's
                // simple_one_for_one).
                self.forget(seq, &exit.reason, me);
            } else {
                self.forget_if_temporary(seq, &exit.reason, me);
            }
            if significant && self.auto_shutdown_due() {
                tracing::debug!(supervisor = %me, child = %id, "significant child exited; shutting down");
                return crate::Reply::Stop(ExitReason::Shutdown);
            }
            return crate::Reply::NoReply;
        }
        let restarted = self.restart(seq, &id, &exit.reason, ctx).await;
        give_up_on_error(restarted, me)
    }

    /// Failed restarts, tried again.
    #[info]
    async fn on_retry(&mut self, _: RetryRestart, ctx: &mut Context) -> crate::Reply<()> {
        let restarted = self.launch_pending(ctx).await;
        give_up_on_error(restarted, ctx.pid())
    }
}

/// What a failed restart means: the supervisor stops with the reason, and the calls waiting for
/// the names it keeps fail with it now rather than after it has stopped its other children.
fn give_up_on_error(restarted: Result<(), ExitReason>, me: Pid) -> crate::Reply<()> {
    match restarted {
        Ok(()) => crate::Reply::NoReply,
        Err(reason) => {
            registry::release_all_kept(me, &reason);
            crate::Reply::Stop(reason)
        }
    }
}

impl SupervisorProcess {
    /// The child `id`, which must exist and not be running.
    fn stopped(&self, id: &str) -> Result<u64, SupervisorError> {
        let seq = *self
            .by_id
            .get(id)
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))?;
        if self.children.get(&seq).is_some_and(|c| c.pid.is_some()) {
            return Err(SupervisorError::Running(id.to_owned()));
        }
        Ok(seq)
    }

    /// Adds a child at the end and starts it; on failure it is not kept.
    async fn add(&mut self, child: Child) -> Result<Pid, SupervisorError> {
        if self.by_id.contains_key(&child.id) {
            return Err(SupervisorError::AlreadyPresent(child.id.to_string()));
        }
        let seq = self.next;
        self.next += 1;
        let id = child.id.clone();
        self.by_id.insert(id.clone(), seq);
        self.children.insert(
            seq,
            Running {
                spec: child,
                pid: None,
                roster: None,
            },
        );
        match self.launch(seq).await {
            Ok(pid) => Ok(pid),
            Err(reason) => {
                let me = crate::self_pid().unwrap_or(Pid::ROOT);
                self.forget(seq, &reason, me);
                Err(SupervisorError::StartFailed {
                    id: id.to_string(),
                    reason,
                })
            }
        }
    }

    /// Starts the (stopped) child `seq`. A panic in its start function (a template, a `clone`
    /// of its argument) fails this start only.
    async fn launch(&mut self, seq: u64) -> Result<Pid, ExitReason> {
        let Some(child) = self.children.get(&seq) else {
            return Err(ExitReason::NoProc);
        };
        let roster =
            (child.spec.kind == ChildKind::Supervisor).then(|| Arc::new(Roster::default()));
        let listing = Listing {
            on: self.roster.clone(),
            member: Member {
                pid: Pid::ROOT,
                id: child.spec.id.clone(),
                shutdown: child.spec.shutdown,
                stop_by: child.spec.stop_by,
                roster: roster.clone(),
            },
        };
        let launch = Launch {
            name: child.spec.name.clone(),
            roster: roster.clone(),
            listing,
            mailbox: child.spec.mailbox,
        };
        let start = catch(|| (child.spec.start)(launch)).map_err(ExitReason::Panic);
        let started = match start {
            Ok(start) => CatchUnwind::new(start)
                .await
                .unwrap_or_else(|panic| Err(ExitReason::Panic(panic))),
            Err(error) => Err(error),
        };
        let pid = match started {
            Ok(pid) => pid,
            Err(reason) => {
                // A failed start has gone by now (a start waits for that): off the roster.
                self.roster.prune_dead();
                return Err(reason);
            }
        };
        if let Some(child) = self.children.get_mut(&seq) {
            child.pid = Some(pid);
            child.roster = roster;
        }
        self.by_pid.insert(pid, seq);
        Ok(pid)
    }

    /// Forgets child `seq` for good: its name (if it has one) is released with `reason`.
    fn forget(&mut self, seq: u64, reason: &ExitReason, me: Pid) {
        self.release_name(seq, reason, me);
        self.pending.remove(&seq);
        if let Some(child) = self.children.remove(&seq) {
            self.by_id.remove(&child.spec.id);
            if let Some(pid) = child.pid {
                self.by_pid.remove(&pid);
                self.roster.remove(pid);
            }
            // The specification holds user values (the start argument), whose `Drop` is user code.
            drop_quietly(child, "a child specification");
        }
    }

    fn forget_if_temporary(&mut self, seq: u64, reason: &ExitReason, me: Pid) {
        if self
            .children
            .get(&seq)
            .is_some_and(|c| c.spec.restart == Restart::Temporary)
        {
            self.forget(seq, reason, me);
        }
    }

    /// The child `seq` will not run again for now: calls waiting for its name fail with `reason`.
    fn release_name(&self, seq: u64, reason: &ExitReason, me: Pid) {
        if let Some(name) = self.children.get(&seq).and_then(|c| c.spec.name.as_ref()) {
            registry::unreserve(name, me, reason);
        }
    }

    fn auto_shutdown_due(&self) -> bool {
        let mut significant = self.children.values().filter(|c| c.spec.significant);
        match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => significant.all(|c| c.pid.is_none()),
        }
    }

    /// Records a restart; `false` when it is one too many for the period.
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.duration_since(t) > self.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.len() <= self.max_restarts as usize
    }

    /// Restarts after child `seq` exited with `reason`, by the strategy; `Err` with the reason to
    /// exit with when the restart intensity is exceeded.
    async fn restart(
        &mut self,
        seq: u64,
        id: &str,
        reason: &ExitReason,
        ctx: &mut Context,
    ) -> Result<(), ExitReason> {
        let me = ctx.pid();
        if !self.allow_restart() {
            tracing::error!(supervisor = %me, child = %id, %reason, max_restarts = self.max_restarts, period = ?self.period, "reached max restart intensity; shutting down");
            return Err(ExitReason::MaxRestartIntensity);
        }
        tracing::warn!(supervisor = %me, child = %id, %reason, restarts = self.restarts.len(), "restarting child");
        let group: Vec<u64> = match self.strategy {
            Strategy::OneForOne => vec![seq],
            Strategy::OneForAll => self.children.keys().copied().collect(),
            Strategy::RestForOne => self.children.range(seq..).map(|(&k, _)| k).collect(),
        };
        for &other in group.iter().rev().filter(|&&other| other != seq) {
            self.stop(other, ctx).await;
        }
        // Temporary siblings are stopped and not started again.
        for &other in &group {
            if other != seq {
                self.forget_if_temporary(other, &ExitReason::Shutdown, me);
            }
        }
        self.pending.extend(
            group
                .into_iter()
                .filter(|seq| self.children.contains_key(seq)),
        );
        self.launch_pending(ctx).await
    }

    /// Starts the children waiting to be restarted, in order. A failed start is charged to the
    /// restart intensity and tried again through the mailbox; under `rest_for_one` and
    /// `one_for_all` the children after it wait for it.
    async fn launch_pending(&mut self, ctx: &mut Context) -> Result<(), ExitReason> {
        let me = ctx.pid();
        let ordered = self.strategy != Strategy::OneForOne;
        let mut failed = false;
        // In start order, without copying the set: each round takes the first pending child
        // after the last one tried.
        let mut next = self.pending.first().copied();
        while let Some(seq) = next {
            next = self.pending.range(seq + 1..).next().copied();
            if failed && ordered {
                break;
            }
            if self.children.get(&seq).is_none_or(|c| c.pid.is_some()) {
                self.pending.remove(&seq);
                continue;
            }
            match self.launch(seq).await {
                Ok(_) => {
                    self.pending.remove(&seq);
                }
                Err(error) => {
                    let id = self.children.get(&seq).map(|c| c.spec.id.clone());
                    tracing::warn!(supervisor = %me, child = ?id, reason = %error, "child failed to restart; trying again");
                    if !self.allow_restart() {
                        tracing::error!(supervisor = %me, child = ?id, "reached max restart intensity; shutting down");
                        return Err(ExitReason::MaxRestartIntensity);
                    }
                    failed = true;
                }
            }
        }
        if failed {
            // A signal: a bounded supervisor's full mailbox must not lose its retry.
            process::signal(me, Message::new(RetryRestart));
        }
        Ok(())
    }

    /// Stops every running child: a static supervisor last started first, each after the one
    /// before; a dynamic one all together, under one shutdown timer (OTP's `simple_one_for_one`).
    async fn stop_all(&mut self, ctx: &mut Context) {
        let order: Vec<u64> = self.children.keys().rev().copied().collect();
        if self.template.is_some() {
            let members = order
                .into_iter()
                .filter_map(|seq| self.detach(seq))
                .collect();
            let roster = self.roster.clone();
            stop_together(ctx, members, Some(&roster)).await;
        } else {
            for seq in order {
                self.stop(seq, ctx).await;
            }
        }
    }

    /// Stops child `seq` if it runs: asks it to stop, waits for its shutdown time, then kills it;
    /// a supervisor child's own children are stopped too if it did not stop them.
    async fn stop(&mut self, seq: u64, ctx: &mut Context) {
        if let Some(member) = self.detach(seq) {
            let roster = self.roster.clone();
            stop_together(ctx, vec![member], Some(&roster)).await;
        }
    }

    /// Takes child `seq` out of the running set, for stopping: `None` if it is not running. It
    /// stays on the roster until it is down, so that if this supervisor dies meanwhile its own
    /// supervisor finishes the stop.
    fn detach(&mut self, seq: u64) -> Option<Member> {
        let child = self.children.get_mut(&seq)?;
        let pid = child.pid.take()?;
        self.by_pid.remove(&pid);
        Some(Member {
            pid,
            id: child.spec.id.clone(),
            shutdown: child.spec.shutdown,
            stop_by: child.spec.stop_by,
            roster: child.roster.take(),
        })
    }
}

/// A process being stopped, and by when it is killed if it has not stopped.
struct Stopping {
    member: Member,
    deadline: Option<Instant>,
}

/// Stops `members` together: each is asked to stop (or killed, for `BrutalKill`) at once and
/// killed if its shutdown time passes first. With `own`, they are this supervisor's children,
/// listed on its roster until they are down (and unlinked first, so that their ends are not taken
/// for crashes); without, orphans of a dead supervisor child. A supervisor among them that dies
/// leaving children of its own gets them stopped as well before this returns.
async fn stop_together(ctx: &mut Context, members: Vec<Member>, own: Option<&Roster>) {
    let linked = own.is_some();
    let mut waiting: HashMap<MonitorRef, Stopping> = HashMap::new();
    for member in members {
        begin_stop(ctx, member, linked, &mut waiting);
    }
    while !waiting.is_empty() {
        let is_ours = |down: &Down| waiting.contains_key(&down.monitor);
        let next_deadline = waiting.values().filter_map(|s| s.deadline).min();
        let down = match next_deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                ctx.receive_if_timeout(is_ours, left).await.ok()
            }
            None => Some(ctx.receive_if(is_ours).await),
        };
        let Some(down) = down else {
            let now = Instant::now();
            for stopping in waiting.values_mut() {
                if stopping.deadline.is_some_and(|deadline| deadline <= now) {
                    let Member { pid, id, .. } = &stopping.member;
                    tracing::warn!(supervisor = %ctx.pid(), child = %id, %pid, "child did not stop in time; killing it");
                    exit(*pid, ExitReason::Kill);
                    stopping.deadline = None;
                }
            }
            continue;
        };
        if let Some(Stopping { member, .. }) = waiting.remove(&down.monitor) {
            tracing::debug!(supervisor = %ctx.pid(), child = %member.id, pid = %member.pid, reason = %down.reason, "child stopped");
            if let Some(own) = own {
                own.remove(member.pid);
            }
            if let Some(roster) = member.roster {
                for orphan in roster.take() {
                    begin_stop(ctx, orphan, false, &mut waiting);
                }
            }
        }
    }
}

fn begin_stop(
    ctx: &mut Context,
    member: Member,
    linked: bool,
    waiting: &mut HashMap<MonitorRef, Stopping>,
) {
    let pid = member.pid;
    // Monitor, then unlink, so the end is seen as one `Down` and not as a crash to restart.
    let monitor = ctx.monitor(pid);
    if linked {
        ctx.unlink(pid);
        ctx.purge(|m| m.downcast_ref::<Exit>().is_some_and(|e| e.from == pid));
    }
    let deadline = match member.shutdown {
        Shutdown::BrutalKill => {
            exit(pid, ExitReason::Kill);
            None
        }
        Shutdown::Timeout(limit) => {
            ask_to_stop(pid, member.stop_by);
            // A limit past the end of time never expires.
            Instant::now().checked_add(limit)
        }
        Shutdown::Infinity => {
            ask_to_stop(pid, member.stop_by);
            None
        }
    };
    waiting.insert(monitor, Stopping { member, deadline });
}

fn ask_to_stop(pid: Pid, stop_by: StopBy) {
    match stop_by {
        StopBy::Request => {
            process::signal(pid, Message::new(SystemStop(ExitReason::Shutdown)));
        }
        StopBy::Signal => exit(pid, ExitReason::Shutdown),
    }
}

impl SupervisorProcessClient {
    /// A typed reference to the running server child `id`, looked up afresh (so it follows the
    /// child across restarts).
    ///
    /// # Errors
    ///
    /// [`LookupError::NoChild`] when the supervisor has no child `id`,
    /// [`LookupError::NotRunning`] when it has one that is not running right now (stopped, or
    /// being restarted), [`LookupError::WrongType`] when it is not an `S` server,
    /// [`LookupError::Timeout`] when the supervisor is too busy to answer within
    /// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT), and [`LookupError::NoProc`] when the
    /// supervisor is gone.
    pub async fn child<S: GenServer>(&self, id: &str) -> Result<ServerRef<S>, LookupError> {
        let error = match self.child_pid(id.to_owned()).await {
            Ok(pid) => return ServerRef::from_pid(pid),
            Err(error) => error.split(),
        };
        Err(match error {
            Err(SupervisorError::NotRunning(_)) => LookupError::NotRunning(id.into()),
            Err(_) => LookupError::NoChild(id.into()),
            Ok(CallError::Timeout { pid, timeout }) => LookupError::Timeout { pid, timeout },
            Ok(CallError::NoProc(pid) | CallError::Exited { pid, .. }) => LookupError::NoProc(pid),
            Ok(CallError::NotRegistered(name)) => LookupError::NotRegistered(name),
            Ok(error) => LookupError::Call(error),
        })
    }
}
