//! The supervisor process: a `#[gen_server]` that starts its children, restarts them by its
//! strategy, and stops them.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use super::{
    AutoShutdown, Child, ChildCounts, ChildInfo, ChildKind, DynamicArg, Restart, Shutdown,
    Strategy, Supervisor, SupervisorError, Template, child::StopBy,
};
use crate::{
    context::Context,
    exit::ExitReason,
    gen_server::{GenServer, LookupError, ServerRef, SystemStop},
    link::{Down, Exit, exit},
    message::Message,
    pid::Pid,
    process,
};

struct Running {
    spec: Child,
    pid: Option<Pid>,
}

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

    /// The pid of the child `id`, if it is running.
    #[install("child_pid")]
    async fn child_pid(&mut self, id: String) -> Option<Pid> {
        self.by_id
            .get(id.as_str())
            .and_then(|seq| self.children.get(seq))
            .and_then(|c| c.pid)
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
        let mut child = template(arg.0)?;
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
        self.forget_if_temporary(seq);
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
        self.forget(seq);
        Ok(())
    }

    /// Starts again the stopped child `id` (OTP's `restart_child`).
    #[install("restart_child")]
    async fn restart_child(&mut self, id: String) -> Result<Pid, SupervisorError> {
        let seq = self.stopped(&id)?;
        self.launch(seq)
            .await
            .map_err(|reason| SupervisorError::StartFailed { id, reason })
    }

    /// Forgets the stopped child `id` (OTP's `delete_child`).
    #[install("delete_child")]
    async fn delete_child(&mut self, id: String) -> Result<(), SupervisorError> {
        let seq = self.stopped(&id)?;
        self.forget(seq);
        Ok(())
    }

    /// A linked process exited: a child to restart, or not.
    #[info]
    async fn on_exit(&mut self, exit: Exit, ctx: &mut Context) -> crate::Reply<()> {
        let Some(seq) = self.by_pid.remove(&exit.from) else {
            tracing::debug!(supervisor = %ctx.pid(), from = %exit.from, reason = %exit.reason, "exit signal from a process that is not a child");
            return crate::Reply::NoReply;
        };
        let Some(child) = self.children.get_mut(&seq) else {
            return crate::Reply::NoReply;
        };
        child.pid = None;
        let (id, restart, significant) = (
            child.spec.id.clone(),
            child.spec.restart,
            child.spec.significant,
        );
        if !restart.restarts_after(&exit.reason) {
            tracing::debug!(supervisor = %ctx.pid(), child = %id, reason = %exit.reason, "child exited; not restarted ({restart:?})");
            self.forget_if_temporary(seq);
            if significant && self.auto_shutdown_due() {
                tracing::debug!(supervisor = %ctx.pid(), child = %id, "significant child exited; shutting down");
                return crate::Reply::Stop(ExitReason::Shutdown);
            }
            return crate::Reply::NoReply;
        }
        match self.restart(seq, &id, &exit.reason, ctx).await {
            Ok(()) => crate::Reply::NoReply,
            Err(reason) => crate::Reply::Stop(reason),
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
            },
        );
        self.launch(seq).await.map_err(|reason| {
            self.forget(seq);
            SupervisorError::StartFailed {
                id: id.to_string(),
                reason,
            }
        })
    }

    /// Starts the (stopped) child `seq`.
    async fn launch(&mut self, seq: u64) -> Result<Pid, ExitReason> {
        let Some(child) = self.children.get(&seq) else {
            return Err(ExitReason::NoProc);
        };
        let pid = (child.spec.start)(child.spec.name.clone()).await?;
        if let Some(child) = self.children.get_mut(&seq) {
            child.pid = Some(pid);
        }
        self.by_pid.insert(pid, seq);
        Ok(pid)
    }

    fn forget(&mut self, seq: u64) {
        if let Some(child) = self.children.remove(&seq) {
            self.by_id.remove(&child.spec.id);
            if let Some(pid) = child.pid {
                self.by_pid.remove(&pid);
            }
        }
    }

    fn forget_if_temporary(&mut self, seq: u64) {
        if self
            .children
            .get(&seq)
            .is_some_and(|c| c.spec.restart == Restart::Temporary)
        {
            self.forget(seq);
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
                self.forget_if_temporary(other);
            }
        }
        let mut pending: VecDeque<u64> = group
            .into_iter()
            .filter(|k| self.children.contains_key(k))
            .collect();
        while let Some(next) = pending.front().copied() {
            match self.launch(next).await {
                Ok(_) => {
                    pending.pop_front();
                }
                Err(error) => {
                    let id = self.children.get(&next).map(|c| c.spec.id.clone());
                    tracing::warn!(supervisor = %me, child = ?id, reason = %error, "child failed to restart; trying again");
                    if !self.allow_restart() {
                        tracing::error!(supervisor = %me, child = ?id, "reached max restart intensity; shutting down");
                        return Err(ExitReason::MaxRestartIntensity);
                    }
                }
            }
        }
        Ok(())
    }

    /// Stops every running child, last started first.
    async fn stop_all(&mut self, ctx: &mut Context) {
        let order: Vec<u64> = self.children.keys().rev().copied().collect();
        for seq in order {
            self.stop(seq, ctx).await;
        }
    }

    /// Stops child `seq` if it runs: asks it to stop, waits for its shutdown time, then kills it.
    async fn stop(&mut self, seq: u64, ctx: &mut Context) {
        let Some(child) = self.children.get_mut(&seq) else {
            return;
        };
        let Some(pid) = child.pid.take() else {
            return;
        };
        self.by_pid.remove(&pid);
        let (shutdown, stop_by, id) = (
            child.spec.shutdown,
            child.spec.stop_by,
            child.spec.id.clone(),
        );
        // Monitor, then unlink, so the end is seen as one `Down` and not as a crash to restart.
        let monitor = ctx.monitor(pid);
        ctx.unlink(pid);
        ctx.purge(|m| m.downcast_ref::<Exit>().is_some_and(|e| e.from == pid));
        let is_down = move |down: &Down| down.monitor == monitor;
        let reason = match shutdown {
            Shutdown::BrutalKill => {
                exit(pid, ExitReason::Kill);
                ctx.receive_if(is_down).await.reason
            }
            Shutdown::Timeout(limit) => {
                ask_to_stop(pid, stop_by);
                match ctx.receive_if_timeout(is_down, limit).await {
                    Ok(down) => down.reason,
                    Err(_) => {
                        tracing::warn!(supervisor = %ctx.pid(), child = %id, %pid, ?limit, "child did not stop in time; killing it");
                        exit(pid, ExitReason::Kill);
                        ctx.receive_if(is_down).await.reason
                    }
                }
            }
            Shutdown::Infinity => {
                ask_to_stop(pid, stop_by);
                ctx.receive_if(is_down).await.reason
            }
        };
        tracing::debug!(supervisor = %ctx.pid(), child = %id, %pid, %reason, "child stopped");
    }
}

fn ask_to_stop(pid: Pid, stop_by: StopBy) {
    match stop_by {
        StopBy::Request => {
            process::deliver(pid, Message::new(SystemStop(ExitReason::Shutdown)));
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
    /// [`LookupError::NotRegistered`] when no child `id` runs, [`LookupError::WrongType`] when it
    /// is not an `S` server, or a [`LookupError::NoProc`] if the supervisor is gone.
    pub async fn child<S: GenServer>(&self, id: &str) -> Result<ServerRef<S>, LookupError> {
        use crate::gen_server::ServerClient;
        let pid = self
            .child_pid(id.to_owned())
            .await
            .map_err(|_| LookupError::NoProc(self.pid()))?
            .ok_or_else(|| LookupError::NotRegistered(id.into()))?;
        ServerRef::from_pid(pid)
    }
}
