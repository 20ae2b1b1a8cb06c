//! Registered names: unique, sendable to, released on exit.

use ferrotp::{
    NotRegistered, RegisterError, register, send, send_named, spawn, spawn_handle, unregister,
    wait, whereis,
};

fn idle() -> ferrotp::Pid {
    spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    })
}

#[tokio::test]
async fn a_registered_process_is_found_and_reached_by_name() {
    let pid = spawn_handle(|mut ctx| async move { ctx.receive::<&str>().await });
    register("registry-echo", pid.pid()).unwrap();
    assert_eq!(whereis("registry-echo"), Some(pid.pid()));
    send_named("registry-echo", "hello").unwrap();
    assert_eq!(pid.join().await, Ok("hello"));
}

#[tokio::test]
async fn names_are_unique_and_a_process_has_one() {
    let (a, b) = (idle(), idle());
    register("registry-unique", a).unwrap();
    assert_eq!(
        register("registry-unique", b),
        Err(RegisterError::NameTaken {
            name: "registry-unique".into(),
            pid: a
        })
    );
    assert_eq!(
        register("registry-other", a),
        Err(RegisterError::AlreadyNamed {
            pid: a,
            name: "registry-unique".into()
        })
    );
    assert_eq!(whereis("registry-unique"), Some(a));
    for pid in [a, b] {
        send(pid, ());
        wait(pid).await;
    }
}

#[tokio::test]
async fn a_name_is_released_when_its_process_exits() {
    let pid = idle();
    register("registry-released", pid).unwrap();
    send(pid, ());
    wait(pid).await;
    assert_eq!(whereis("registry-released"), None);
    let next = idle();
    register("registry-released", next).unwrap();
    send(next, ());
    wait(next).await;
}

#[tokio::test]
async fn a_dead_process_cannot_be_registered() {
    let pid = spawn(|_| async {});
    wait(pid).await;
    assert_eq!(
        register("registry-dead", pid),
        Err(RegisterError::NoProc(pid))
    );
    assert_eq!(whereis("registry-dead"), None);
}

#[tokio::test]
async fn unregister_frees_the_name_and_the_process() {
    let pid = idle();
    register("registry-unregister", pid).unwrap();
    assert_eq!(unregister("registry-unregister"), Some(pid));
    assert_eq!(unregister("registry-unregister"), None);
    assert_eq!(whereis("registry-unregister"), None);
    register("registry-unregister-2", pid).unwrap();
    send(pid, ());
    wait(pid).await;
}

#[tokio::test]
async fn sending_to_an_unknown_name_is_a_typed_error() {
    assert_eq!(
        send_named("registry-nobody", 1),
        Err(NotRegistered("registry-nobody".into()))
    );
    assert_eq!(
        NotRegistered("registry-nobody".into()).to_string(),
        "no process is registered as `registry-nobody`"
    );
}
