//! Connections, authenticated sync messages with answers, gossip, back-pressure.

use std::sync::Arc;
use std::time::Duration;

use labmesh_sync::net::{
    GossipError, NetConfig, NetEvent, NetworkHandle, NoContent, PeerId, Reply, SendError,
};

use super::harness::{TestNode, Transport, config, config_only, start, within};

fn spawn_send(
    net: &NetworkHandle,
    to: PeerId,
    bytes: &[u8],
) -> tokio::task::JoinHandle<Result<Vec<Vec<u8>>, SendError>> {
    let (net, bytes) = (net.clone(), bytes.to_vec());
    tokio::spawn(async move { net.send(to, bytes).await })
}

async fn next_message(node: &mut TestNode) -> (PeerId, Vec<u8>, Reply) {
    node.next("a message", |e| match e {
        NetEvent::Message { peer, bytes, reply } => Some((peer, bytes, reply)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_authenticated_messages_over_quic_and_tcp() {
    for t in [Transport::Quic, Transport::Tcp] {
        let mut a = start(config_only(t), Arc::new(NoContent)).await;
        let mut b = start(config_only(t), Arc::new(NoContent)).await;
        // The swarm's identity is the node key's.
        assert_eq!(a.net.local_peer_id(), a.key.peer_id());
        assert_eq!(b.net.local_peer_id(), b.key.peer_id());

        let got = within("dial", a.net.dial(b.addr(t))).await.expect("dial");
        assert_eq!(got, b.peer(), "{t:?}");
        let (peer, addr) = b
            .next("inbound connection", |e| match e {
                NetEvent::Connected {
                    peer,
                    addr,
                    inbound: true,
                } => Some((peer, addr)),
                _ => None,
            })
            .await;
        assert_eq!(peer, a.peer());
        assert!(t.matches(&addr), "{t:?} connection came over {addr}");
        let (peer, inbound) = a
            .next("outbound connection", |e| match e {
                NetEvent::Connected { peer, inbound, .. } => Some((peer, inbound)),
                _ => None,
            })
            .await;
        assert_eq!((peer, inbound), (b.peer(), false));

        // a -> b, answered with two messages.
        let sent = spawn_send(&a.net, b.peer(), b"pull");
        let (from, bytes, reply) = next_message(&mut b).await;
        assert_eq!(from, a.peer(), "the sender is the authenticated peer");
        assert_eq!(bytes, b"pull");
        reply
            .send(vec![b"batches".to_vec(), b"more".to_vec()])
            .expect("fits");
        let answer = within("answer", sent).await.expect("task").expect("sent");
        assert_eq!(answer, vec![b"batches".to_vec(), b"more".to_vec()]);

        // b -> a on the same connection; a dropped reply is an empty answer.
        let sent = spawn_send(&b.net, a.peer(), b"announce");
        let (from, bytes, reply) = next_message(&mut a).await;
        assert_eq!((from, bytes.as_slice()), (b.peer(), &b"announce"[..]));
        drop(reply);
        assert!(
            within("ack", sent)
                .await
                .expect("task")
                .expect("sent")
                .is_empty()
        );

        // A reply too large for the frame comes back to be sent separately.
        let sent = spawn_send(&a.net, b.peer(), b"x");
        let (_, _, reply) = next_message(&mut b).await;
        let big = vec![vec![0u8; reply.max_bytes() + 1]];
        assert_eq!(reply.send(big.clone()), Err(big));
        assert!(
            within("ack", sent)
                .await
                .expect("task")
                .expect("sent")
                .is_empty()
        );

        a.net.shutdown().await;
        let gone = b
            .next("disconnect", |e| match e {
                NetEvent::Disconnected { peer } => Some(peer),
                _ => None,
            })
            .await;
        assert_eq!(gone, a.peer());
        assert!(matches!(
            a.net.send(b.peer(), b"late".to_vec()).await,
            Err(SendError::Shutdown)
        ));
        b.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_messages_and_gossip() {
    let topic = "collection:Fq8cM2uX0aB1cD2e";
    let mut hub = start(config(), Arc::new(NoContent)).await;
    let b = start(config(), Arc::new(NoContent)).await;
    let mut c = start(config(), Arc::new(NoContent)).await;
    // b over QUIC, c over TCP.
    within("dial", b.net.dial(hub.addr(Transport::Quic)))
        .await
        .expect("b dials");
    within("dial", c.net.dial(hub.addr(Transport::Tcp)))
        .await
        .expect("c dials");

    for node in [&hub, &b, &c] {
        node.net.subscribe(topic).await.expect("subscribe");
    }
    let mut subscribed = Vec::new();
    while subscribed.len() < 2 {
        let peer = hub
            .next("subscriptions", |e| match e {
                NetEvent::PeerSubscribed { peer, topic: t } if t == topic => Some(peer),
                _ => None,
            })
            .await;
        subscribed.push(peer);
    }
    subscribed.sort();
    let mut expected = vec![b.peer(), c.peer()];
    expected.sort();
    assert_eq!(subscribed, expected);

    // Both spokes talk to the hub, each seen under its own identity.
    let from_b = spawn_send(&b.net, hub.peer(), b"from b");
    let from_c = spawn_send(&c.net, hub.peer(), b"from c");
    for _ in 0..2 {
        let (peer, bytes, reply) = next_message(&mut hub).await;
        let expected = if peer == b.peer() {
            &b"from b"[..]
        } else {
            &b"from c"[..]
        };
        assert!(peer == b.peer() || peer == c.peer());
        assert_eq!(bytes, expected);
        reply.ack();
    }
    within("b", from_b).await.expect("task").expect("b sent");
    within("c", from_c).await.expect("task").expect("c sent");

    // b's announcement reaches the hub directly and c through the hub.
    b.net
        .publish(topic, b"marks advanced".to_vec())
        .await
        .expect("publish");
    for node in [&mut hub, &mut c] {
        let (origin, bytes) = node
            .next("gossip", |e| match e {
                NetEvent::Gossip {
                    origin,
                    topic: t,
                    bytes,
                    ..
                } if t == topic => Some((origin, bytes)),
                _ => None,
            })
            .await;
        assert_eq!(origin, Some(b.peer()), "the author is signed");
        assert_eq!(bytes, b"marks advanced");
    }

    // Limits and empty topics.
    let too_big = vec![0u8; hub.net.config().max_gossip_bytes + 1];
    assert!(matches!(
        hub.net.publish(topic, too_big).await,
        Err(GossipError::TooLarge)
    ));
    assert!(matches!(
        hub.net.publish("collection:nobody", b"x".to_vec()).await,
        Err(GossipError::NoPeers(_))
    ));
    for node in [hub, b, c] {
        node.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_read_answers_busy() {
    // The receiver's event channel holds 4 events and it never reads them.
    let slow_config = NetConfig {
        event_queue: 4,
        request_timeout: Duration::from_secs(5),
        ..config_only(Transport::Tcp)
    };
    let slow = start(slow_config, Arc::new(NoContent)).await;
    let a = start(config_only(Transport::Tcp), Arc::new(NoContent)).await;
    within("dial", a.net.dial(slow.addr(Transport::Tcp)))
        .await
        .expect("dial");
    let sends: Vec<_> = (0..10u8)
        .map(|i| spawn_send(&a.net, slow.peer(), &[i]))
        .collect();
    let mut busy = 0;
    for s in sends {
        match within("send", s).await.expect("task") {
            Err(SendError::Busy(p)) => {
                assert_eq!(p, slow.peer());
                busy += 1;
            }
            // The few that fit wait for an answer that never comes.
            Ok(_) | Err(SendError::Timeout(_)) | Err(SendError::NoAnswer(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(busy >= 6, "only {busy} of 10 sends were turned away");
    a.net.shutdown().await;
    slow.net.shutdown().await;
}

#[test]
fn config_loads_from_toml() {
    let text = r#"
        listen = ["/ip4/0.0.0.0/udp/4001/quic-v1"]
        mdns = false
        max_message_bytes = 1048576
        request_timeout = "45s"
        idle_timeout = 300
        content_timeout = "1500ms"
    "#;
    let c: NetConfig = toml::from_str(text).expect("parses");
    assert_eq!(c.listen.len(), 1);
    assert!(!c.mdns);
    assert_eq!(c.max_message_bytes, 1 << 20);
    assert_eq!(c.request_timeout, Duration::from_secs(45));
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
    assert_eq!(c.content_timeout, Duration::from_millis(1500));
    assert_eq!(
        c.max_fetch_attempts,
        NetConfig::default().max_fetch_attempts
    );
    c.validate().expect("valid");
    let back: NetConfig =
        toml::from_str(&toml::to_string(&c).expect("serializes")).expect("reparses");
    assert_eq!(back, c);
    assert!(toml::from_str::<NetConfig>("request_timeout = \"soon\"").is_err());
    assert!(toml::from_str::<NetConfig>("unknown_knob = 1").is_err());
    let zero = NetConfig {
        max_message_bytes: 0,
        ..NetConfig::default()
    };
    assert!(zero.validate().is_err());
}
