//! Introspection: live processes and a snapshot of each.

use ferrotp::{ExitReason, Status, exit, process_info, processes, register, send, spawn, wait};
use ferrotp_tests::in_process;

#[tokio::test]
async fn processes_lists_live_processes_only() {
    let live = spawn(|mut ctx| async move { ctx.receive::<()>().await });
    let dead = spawn(|_| async {});
    wait(dead).await;
    let all = processes();
    assert!(all.contains(&live));
    assert!(!all.contains(&dead));
    assert_eq!(process_info(dead), None);
    send(live, ());
}

#[tokio::test]
async fn process_info_reports_name_mailbox_counts_relations_and_status() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let watched = spawn(|mut ctx| async move { ctx.receive::<()>().await });
        let subject = ctx.spawn_link(move |mut ctx| async move {
            ctx.trap_exit(true);
            ctx.monitor(watched);
            ctx.receive::<u8>().await; // one message handled
            send(me, "ready");
            ctx.receive::<()>().await; // then it waits, and later messages pile up
        });
        register("info-subject", subject).unwrap();
        ctx.monitor(subject);
        send(subject, 1_u8);
        ctx.receive::<&str>().await;
        send(subject, "unexpected");
        send(subject, 2.5_f64);

        // Let the subject park in its receive before looking.
        while process_info(subject).unwrap().status != Status::Waiting {
            tokio::task::yield_now().await;
        }
        let info = process_info(subject).unwrap();
        assert_eq!(info.pid, subject);
        assert_eq!(info.name.as_deref(), Some("info-subject"));
        assert_eq!(info.mailbox_len, 2);
        assert_eq!(info.handled, 1);
        assert_eq!(info.links, vec![me]);
        assert_eq!(info.monitors, vec![watched]);
        assert_eq!(info.monitored_by, vec![me]);
        assert!(info.trap_exit);
        assert_eq!(info.status, Status::Waiting);

        let mine = process_info(me).unwrap();
        assert_eq!(mine.status, Status::Running);
        assert_eq!(
            (mine.links, mine.monitors, mine.trap_exit),
            (vec![subject], vec![subject], false)
        );

        ctx.unlink(subject);
        exit(subject, ExitReason::Kill);
        exit(watched, ExitReason::Kill);
    })
    .await;
}
