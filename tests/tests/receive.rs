//! Receiving: by type, selective with predicates, several types at once, timeouts.

use std::time::Duration;

use ferrotp::{Message, Timeout, send};
use ferrotp_tests::in_process;
use tokio::time::Instant;

#[tokio::test]
async fn receive_by_type_leaves_other_types_queued_in_order() {
    let got = in_process(|mut ctx| async move {
        let me = ctx.pid();
        for m in [1_u32, 2] {
            send(me, m);
        }
        send(me, String::from("x"));
        for m in [3_u32, 4] {
            send(me, m);
        }
        let text: String = ctx.receive().await;
        let mut numbers = Vec::new();
        for _ in 0..4 {
            numbers.push(ctx.receive::<u32>().await);
        }
        (text, numbers, ctx.mailbox_len())
    })
    .await;
    assert_eq!(got, ("x".to_string(), vec![1, 2, 3, 4], 0));
}

#[tokio::test]
async fn selective_receive_takes_the_first_match_and_keeps_the_rest_in_order() {
    let got = in_process(|mut ctx| async move {
        let me = ctx.pid();
        for m in [5_u32, 12, 7, 30, 9] {
            send(me, m);
        }
        let first_big = ctx.receive_if(|n: &u32| *n > 10).await;
        let second_big = ctx.receive_if(|n: &u32| *n > 10).await;
        let mut rest = Vec::new();
        while let Ok(n) = ctx.receive_timeout::<u32>(Duration::ZERO).await {
            rest.push(n);
        }
        (first_big, second_big, rest)
    })
    .await;
    assert_eq!(got, (12, 30, vec![5, 7, 9]));
}

#[tokio::test]
async fn a_waiting_selective_receive_skips_non_matching_arrivals() {
    let got = in_process(|mut ctx| async move {
        let me = ctx.pid();
        ferrotp::spawn(move |_| async move {
            for m in [1_u32, 2, 3, 100, 4] {
                send(me, m);
                tokio::task::yield_now().await;
            }
        });
        let big = ctx.receive_if(|n: &u32| *n >= 100).await;
        let mut rest = Vec::new();
        for _ in 0..4 {
            rest.push(ctx.receive::<u32>().await);
        }
        (big, rest)
    })
    .await;
    assert_eq!(got, (100, vec![1, 2, 3, 4]));
}

#[tokio::test]
async fn receive_matching_accepts_several_types() {
    #[derive(Debug, PartialEq)]
    struct Data(&'static str);
    #[derive(Debug, PartialEq)]
    struct Event(&'static str);

    let got = in_process(|mut ctx| async move {
        let me = ctx.pid();
        send(me, 0_u8);
        send(me, Event("started"));
        send(me, Data("payload"));
        let pattern = |m: &Message| m.is::<Data>() || m.is::<Event>();
        let first = ctx.receive_matching(pattern).await;
        let second = ctx.receive_matching(pattern).await;
        let leftover = ctx.receive_any().await;
        (
            first.downcast::<Event>().ok(),
            second.downcast::<Data>().ok(),
            leftover.downcast::<u8>().ok(),
        )
    })
    .await;
    assert_eq!(
        got,
        (Some(Event("started")), Some(Data("payload")), Some(0))
    );
}

#[tokio::test(start_paused = true)]
async fn receive_timeout_gives_up_after_exactly_the_timeout() {
    let (result, waited) = in_process(|mut ctx| async move {
        let start = Instant::now();
        let result = ctx.receive_timeout::<u32>(Duration::from_millis(250)).await;
        (result, start.elapsed())
    })
    .await;
    assert_eq!(result, Err(Timeout(Duration::from_millis(250))));
    assert_eq!(waited, Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_message_arriving_before_the_timeout_is_received() {
    let got = in_process(|mut ctx| async move {
        ferrotp::send_after(Duration::from_millis(100), ctx.pid(), 7_u32);
        let start = Instant::now();
        let got = ctx.receive_timeout::<u32>(Duration::from_secs(1)).await;
        (got, start.elapsed())
    })
    .await;
    assert_eq!(got, (Ok(7), Duration::from_millis(100)));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_receive_takes_nothing() {
    let got = in_process(|mut ctx| async move {
        send(ctx.pid(), "not a number");
        let timed_out = ctx
            .receive_if_timeout(|_: &u32| true, Duration::from_millis(10))
            .await;
        let any = ctx
            .receive_matching_timeout(|_| true, Duration::from_millis(10))
            .await;
        (timed_out, any.ok().and_then(|m| m.downcast::<&str>().ok()))
    })
    .await;
    assert_eq!(
        got,
        (
            Err(Timeout(Duration::from_millis(10))),
            Some("not a number")
        )
    );
}

#[tokio::test]
async fn a_message_of_another_type_reports_its_type_name() {
    let name = in_process(|mut ctx| async move {
        send(ctx.pid(), 1.5_f64);
        ctx.receive_any().await.type_name()
    })
    .await;
    assert_eq!(name, "f64");
}
