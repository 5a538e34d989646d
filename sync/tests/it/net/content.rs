//! Content: verified fetches, raw streams, liars, refusals, interruptions.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use labmesh_crypto::NodeKey;
use labmesh_sync::net::{FetchError, NetConfig, NoContent, staging_path};

use super::harness::{
    MemSource, Mode, TestNode, Transport, config, config_only, object, start, start_with_key,
    within,
};

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_fetch_matches_its_hash_over_quic_and_tcp() {
    let size = 4 * MIB + 12_345;
    let obj = object("plate1.parquet", size);
    let (data, hash) = obj.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    for t in [Transport::Quic, Transport::Tcp] {
        let server_source = MemSource::new(&obj, Mode::Honest);
        let server = start(config_only(t), server_source.clone()).await;
        // Over TCP in 1 MiB streams (5 of them), over QUIC in one.
        let segment = if t == Transport::Tcp {
            MIB as u64
        } else {
            1 << 30
        };
        let client_config = NetConfig {
            content_segment_bytes: segment,
            ..config_only(t)
        };
        let client = start(client_config, Arc::new(NoContent)).await;
        within("dial", client.net.dial(server.addr(t)))
            .await
            .expect("dial");

        let dest = dir.path().join(format!("object-{t:?}"));
        let report = within(
            "fetch",
            client
                .net
                .fetch_verified(&[server.peer()], hash, size as u64, &dest),
        )
        .await
        .expect("fetched");
        assert_eq!(report.received, vec![(server.peer(), size as u64)]);
        assert_eq!(report.resumed_from, 0);
        let asked = server_source.asked.lock().expect("lock").clone();
        let segments = if t == Transport::Tcp { 5 } else { 1 };
        assert_eq!(asked.len(), segments, "{asked:?}");
        assert_eq!(
            asked.last().map(|a| a.1),
            Some(segment * (segments as u64 - 1))
        );
        assert!(report.wrong_content.is_empty() && report.failures.is_empty());
        assert_eq!(std::fs::read(&dest).expect("dest"), *data);
        assert!(!staging_path(&dest).exists(), "staging file renamed away");

        // A raw stream from an offset yields exactly the suffix.
        let offset = 3 * MIB as u64 + 7;
        let stream = within(
            "open",
            client.net.fetch(server.peer(), hash, size as u64, offset),
        )
        .await
        .expect("stream");
        assert_eq!(stream.remaining(), size as u64 - offset);
        let chunks: Vec<_> = within("chunks", stream.into_stream().try_collect::<Vec<_>>())
            .await
            .expect("read");
        let got: Vec<u8> = chunks.concat();
        assert_eq!(got, data[offset as usize..]);

        server.net.shutdown().await;
        client.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_holder_is_caught_and_the_next_one_used() {
    let size = 3 * MIB + 1;
    let obj = object("lie", size);
    let (data, hash) = obj.clone();
    let liar = start(config(), MemSource::new(&obj, Mode::Liar)).await;
    let honest = start(config(), MemSource::new(&obj, Mode::Honest)).await;
    let client = start(config(), Arc::new(NoContent)).await;
    within("dial", client.net.dial(liar.addr(Transport::Quic)))
        .await
        .expect("dial");
    within("dial", client.net.dial(honest.addr(Transport::Tcp)))
        .await
        .expect("dial");

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("obj");
    let report = within(
        "fetch",
        client
            .net
            .fetch_verified(&[liar.peer(), honest.peer()], hash, size as u64, &dest),
    )
    .await
    .expect("the honest holder delivers");
    assert_eq!(report.wrong_content, vec![liar.peer()]);
    assert_eq!(
        report.received,
        vec![(liar.peer(), size as u64), (honest.peer(), size as u64)]
    );
    assert_eq!(std::fs::read(&dest).expect("dest"), *data);

    // Only liars: a clean failure naming them, no destination file.
    let dest2 = dir.path().join("obj2");
    let err = within(
        "fetch",
        client
            .net
            .fetch_verified(&[liar.peer()], hash, size as u64, &dest2),
    )
    .await
    .expect_err("no honest holder");
    match err {
        FetchError::AllHoldersFailed(errors) => {
            assert!(
                matches!(errors.as_slice(), [FetchError::WrongContent(p)] if *p == liar.peer()),
                "{errors:?}"
            )
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!dest2.exists());
    for n in [liar, honest, client] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_a_clean_error() {
    let (_, hash) = object("secret", 1000);
    let server = start(config(), Arc::new(NoContent)).await;
    let client = start(config(), Arc::new(NoContent)).await;
    within("dial", client.net.dial(server.addr(Transport::Quic)))
        .await
        .expect("dial");

    let raw = within("fetch", client.net.fetch(server.peer(), hash, 1000, 0)).await;
    assert!(
        matches!(raw, Err(FetchError::Refused(p)) if p == server.peer()),
        "{raw:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("secret");
    let err = within(
        "fetch",
        client
            .net
            .fetch_verified(&[server.peer()], hash, 1000, &dest),
    )
    .await
    .expect_err("refused");
    match err {
        FetchError::AllHoldersFailed(errors) => assert!(
            matches!(errors.as_slice(), [FetchError::Refused(p)] if *p == server.peer()),
            "{errors:?}"
        ),
        other => panic!("unexpected {other}"),
    }
    assert!(!dest.exists());
    assert!(!staging_path(&dest).exists(), "no empty staging file left");
    assert!(matches!(
        client.net.fetch_verified(&[], hash, 1000, &dest).await,
        Err(FetchError::NoHolders)
    ));
    assert!(matches!(
        client.net.fetch(server.peer(), hash, 10, 11).await,
        Err(FetchError::Invalid(_))
    ));
    server.net.shutdown().await;
    client.net.shutdown().await;
}

/// Waits until the staging file holds `len` bytes (what the stalled source
/// sent before blocking).
async fn staging_reaches(path: &std::path::Path, len: u64) {
    within("the staging file to fill", async {
        loop {
            if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == len {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_transfer_resumes_from_a_second_holder() {
    let size = 4 * MIB;
    let cut = MIB as u64;
    let obj = object("interrupted", size);
    let (data, hash) = obj.clone();
    let (stalling, gate) = MemSource::stalling(&obj, cut);
    let first = start(config(), stalling).await;
    let second_source = MemSource::new(&obj, Mode::Honest);
    let second = start(config(), second_source.clone()).await;
    let client = start(config(), Arc::new(NoContent)).await;
    within("dial", client.net.dial(first.addr(Transport::Quic)))
        .await
        .expect("dial");
    within("dial", client.net.dial(second.addr(Transport::Tcp)))
        .await
        .expect("dial");

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("obj");
    let fetch = {
        let (net, holders, dest) = (
            client.net.clone(),
            [first.peer(), second.peer()],
            dest.clone(),
        );
        tokio::spawn(async move { net.fetch_verified(&holders, hash, size as u64, &dest).await })
    };
    staging_reaches(&staging_path(&dest), cut).await;
    first.net.shutdown().await; // the serving node goes away mid-transfer
    drop(gate);

    let report = within("fetch", fetch)
        .await
        .expect("task")
        .expect("fetched");
    assert_eq!(
        report.received,
        vec![(first.peer(), cut), (second.peer(), size as u64 - cut)]
    );
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert_eq!(
        second_source.asked.lock().expect("lock").as_slice(),
        &[(client.peer(), cut)]
    );
    assert_eq!(std::fs::read(&dest).expect("dest"), *data);
    second.net.shutdown().await;
    client.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_transfer_resumes_when_the_holder_restarts() {
    let size = 3 * MIB + 99;
    let cut = 2 * MIB as u64;
    let obj = object("restart", size);
    let (data, hash) = obj.clone();
    let quick = NetConfig {
        max_fetch_attempts: 2,
        dial_timeout: Duration::from_secs(10),
        ..config_only(Transport::Tcp)
    };
    let (stalling, gate) = MemSource::stalling(&obj, cut);
    let seed = [42u8; 32];
    let first = start_with_key(
        NodeKey::from_secret_bytes(&seed),
        config_only(Transport::Tcp),
        stalling,
    )
    .await;
    let client = start(quick, Arc::new(NoContent)).await;
    within("dial", client.net.dial(first.addr(Transport::Tcp)))
        .await
        .expect("dial");

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("obj");
    let fetch = {
        let (net, holder, dest) = (client.net.clone(), first.peer(), dest.clone());
        tokio::spawn(async move {
            net.fetch_verified(&[holder], hash, size as u64, &dest)
                .await
        })
    };
    staging_reaches(&staging_path(&dest), cut).await;
    first.net.shutdown().await;
    drop(gate);
    let err = within("fetch", fetch)
        .await
        .expect("task")
        .expect_err("the only holder is gone");
    assert!(matches!(err, FetchError::AllHoldersFailed(_)), "{err}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::metadata(staging_path(&dest))
            .expect("staging kept")
            .len(),
        cut
    );

    // The same node (same key) comes back on a new port; the fetch resumes.
    let restarted: TestNode = start_with_key(
        NodeKey::from_secret_bytes(&seed),
        config_only(Transport::Tcp),
        MemSource::new(&obj, Mode::Honest),
    )
    .await;
    assert_eq!(restarted.peer(), first.peer());
    within("dial", client.net.dial(restarted.addr(Transport::Tcp)))
        .await
        .expect("redial");
    let report = within(
        "resumed fetch",
        client
            .net
            .fetch_verified(&[restarted.peer()], hash, size as u64, &dest),
    )
    .await
    .expect("resumed");
    assert_eq!(report.resumed_from, cut);
    assert_eq!(report.received, vec![(restarted.peer(), size as u64 - cut)]);
    assert_eq!(std::fs::read(&dest).expect("dest"), *data);
    restarted.net.shutdown().await;
    client.net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_staging_files_are_rehashed_not_trusted() {
    let size = MIB + 3;
    let obj = object("leftover", size);
    let (data, hash) = obj.clone();
    let server_source = MemSource::new(&obj, Mode::Honest);
    let server = start(config(), server_source.clone()).await;
    let client = start(config(), Arc::new(NoContent)).await;
    within("dial", client.net.dial(server.addr(Transport::Quic)))
        .await
        .expect("dial");
    let dir = tempfile::tempdir().expect("tempdir");

    // A complete, correct leftover: verified and published without asking anyone.
    let dest = dir.path().join("complete");
    std::fs::write(staging_path(&dest), data.as_slice()).expect("write");
    let report = within(
        "fetch",
        client
            .net
            .fetch_verified(&[server.peer()], hash, size as u64, &dest),
    )
    .await
    .expect("published");
    assert_eq!(report.resumed_from, size as u64);
    assert!(report.received.is_empty());
    assert!(server_source.asked.lock().expect("lock").is_empty());
    assert_eq!(std::fs::read(&dest).expect("dest"), *data);

    // A complete but corrupt leftover (and one longer than the object): thrown
    // away, fetched again from zero, nobody blamed.
    for leftover in [
        {
            let mut bad = data.as_ref().clone();
            bad[7] ^= 1;
            bad
        },
        vec![0u8; size + 10],
    ] {
        let dest = dir.path().join("corrupt");
        std::fs::write(staging_path(&dest), &leftover).expect("write");
        let report = within(
            "fetch",
            client
                .net
                .fetch_verified(&[server.peer()], hash, size as u64, &dest),
        )
        .await
        .expect("refetched");
        assert!(report.wrong_content.is_empty());
        assert_eq!(report.received, vec![(server.peer(), size as u64)]);
        assert_eq!(std::fs::read(&dest).expect("dest"), *data);
    }

    // The empty object needs no holder at all.
    let empty = *blake3::hash(b"").as_bytes();
    let dest = dir.path().join("empty");
    let report = client
        .net
        .fetch_verified(&[server.peer()], empty, 0, &dest)
        .await
        .expect("empty object");
    assert!(report.received.is_empty());
    assert_eq!(std::fs::metadata(&dest).expect("dest").len(), 0);
    server.net.shutdown().await;
    client.net.shutdown().await;
}
