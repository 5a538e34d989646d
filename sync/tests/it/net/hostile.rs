//! Hostile input: oversized and malformed frames on the sync and content
//! protocols, sent from a raw libp2p swarm that speaks the protocol names
//! but not the rules. The node closes those streams, reports them, and keeps
//! serving honest peers.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use labmesh_sync::net::codec::SYNC_PROTOCOL;
use labmesh_sync::net::{CONTENT_PROTOCOL, NetEvent, NoContent, PeerId, Problem, SendError};
use libp2p::{Multiaddr, Stream, noise, tcp, yamux};
use libp2p_stream::Control;

use super::harness::{Transport, config_only, start, within};

/// A bare swarm (TCP, noise, yamux, raw streams) dialing `addr`.
fn attacker(addr: Multiaddr) -> (PeerId, Control, tokio::task::JoinHandle<()>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let control = swarm.behaviour().new_control();
    let peer = *swarm.local_peer_id();
    swarm.dial(addr).expect("dial");
    let task = tokio::spawn(async move {
        loop {
            let _ = swarm.select_next_some().await;
        }
    });
    (peer, control, task)
}

/// Reads until the node closes or resets the stream; returns what it sent.
async fn read_to_close(stream: &mut Stream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = within("the node to close the stream", stream.read_to_end(&mut got)).await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_are_rejected() {
    let t = Transport::Tcp;
    let mut node = start(config_only(t), Arc::new(NoContent)).await;
    let max = node.net.config().max_message_bytes;
    let (evil, mut control, evil_task) = attacker(node.addr(t));

    // 1. A sync request announcing more than the limit: closed unanswered.
    let mut s = within("stream", control.open_stream(node.peer(), SYNC_PROTOCOL))
        .await
        .expect("sync stream");
    let len = u32::try_from(max + 1).expect("fits");
    s.write_all(&len.to_be_bytes()).await.expect("write");
    let _ = s.write_all(&[0u8; 1024]).await;
    assert!(
        read_to_close(&mut s).await.is_empty(),
        "no answer to an oversized frame"
    );
    let (peer, problem) = node
        .next("bad frame report", |e| match e {
            NetEvent::Problem {
                peer,
                problem: p @ Problem::BadFrame(_),
            } => Some((peer, p)),
            _ => None,
        })
        .await;
    assert_eq!(peer, None, "libp2p's request-response does not say who");
    assert!(format!("{problem:?}").contains("exceeds"), "{problem:?}");

    // 2. A truncated request: announces 100 bytes, sends 10, closes.
    let mut s = within("stream", control.open_stream(node.peer(), SYNC_PROTOCOL))
        .await
        .expect("sync stream");
    s.write_all(&100u32.to_be_bytes()).await.expect("write");
    s.write_all(&[1u8; 10]).await.expect("write");
    s.close().await.expect("close");
    assert!(read_to_close(&mut s).await.is_empty());
    node.next("truncated frame report", |e| match e {
        NetEvent::Problem {
            problem: Problem::BadFrame(e),
            ..
        } if e.contains("ended after") => Some(()),
        _ => None,
    })
    .await;

    // 3. A content request with its offset past its size: BadRequest (3).
    let mut s = within("stream", control.open_stream(node.peer(), CONTENT_PROTOCOL))
        .await
        .expect("content stream");
    let mut header = [0u8; 56];
    header[32..40].copy_from_slice(&10u64.to_be_bytes()); // size
    header[40..48].copy_from_slice(&11u64.to_be_bytes()); // offset
    header[48..].copy_from_slice(&0u64.to_be_bytes()); // len
    s.write_all(&header).await.expect("write");
    assert_eq!(read_to_close(&mut s).await, vec![3]);
    node.next("bad content request report", |e| match e {
        NetEvent::Problem {
            peer: Some(p),
            problem: Problem::BadContentRequest(_),
        } if p == evil => Some(()),
        _ => None,
    })
    .await;

    // 4. A short content header, then close.
    let mut s = within("stream", control.open_stream(node.peer(), CONTENT_PROTOCOL))
        .await
        .expect("content stream");
    s.write_all(&[0u8; 20]).await.expect("write");
    s.close().await.expect("close");
    assert!(read_to_close(&mut s).await.is_empty());
    node.next("short header report", |e| match e {
        NetEvent::Problem {
            peer: Some(p),
            problem: Problem::BadContentRequest(_),
        } if p == evil => Some(()),
        _ => None,
    })
    .await;
    evil_task.abort();

    // The node still serves honest peers; local limits hold too.
    let honest = start(config_only(t), Arc::new(NoContent)).await;
    within("dial", honest.net.dial(node.addr(t)))
        .await
        .expect("dial");
    let sent = {
        let (net, to) = (honest.net.clone(), node.peer());
        tokio::spawn(async move { net.send(to, b"still there?".to_vec()).await })
    };
    let (from, reply) = node
        .next("an honest message", |e| match e {
            NetEvent::Message { peer, reply, .. } => Some((peer, reply)),
            _ => None,
        })
        .await;
    assert_eq!(from, honest.peer());
    reply.ack();
    within("answer", sent)
        .await
        .expect("task")
        .expect("answered");
    let too_big = vec![0u8; max + 1];
    assert!(matches!(
        honest.net.send(node.peer(), too_big).await,
        Err(SendError::TooLarge { .. })
    ));
    honest.net.shutdown().await;
    node.net.shutdown().await;
}
