//! Helpers for the end-to-end tests in `it/`: the `labmesh` binary, a
//! throwaway lab directory, and a real S3-protocol server (s3s-fs) run
//! in-process on loopback, so `cargo test` needs nothing installed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `labmesh` binary cargo built for this test run.
pub fn labmesh_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/it-<hash> -> target/<profile>/labmesh
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("labmesh{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (which builds it) or `cargo build -p labmesh` first",
        bin.display()
    );
    bin
}

/// A temporary directory to run `labmesh` in, with a clean environment.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
            env: vec![("USER".into(), "ada".into())],
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `labmesh` command running in `cwd` (relative to the sandbox).
    pub fn cmd(&self, cwd: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(labmesh_bin());
        cmd.args(args).current_dir(self.path().join(cwd));
        cmd.env_remove("LABMESH_INSTANCE")
            .env_remove(labmesh::failpoint::ENV);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `labmesh` and returns its output, whatever the exit code.
    pub fn run(&self, cwd: &str, args: &[&str]) -> Output {
        self.cmd(cwd, args).output().expect("run labmesh")
    }

    /// Runs `labmesh`, asserts success, returns stdout.
    pub fn ok(&self, cwd: &str, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            out.status.success(),
            "labmesh {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs `labmesh`, asserts failure, returns stderr.
    pub fn fails(&self, cwd: &str, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            !out.status.success(),
            "labmesh {args:?} should have failed; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }

    /// Runs `labmesh --json …` and parses stdout.
    pub fn json(&self, cwd: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(cwd, &all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("labmesh {args:?} printed invalid JSON ({e}):\n{out}"))
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
        path
    }
}

/// A real S3-protocol server (s3s-fs, plain files on disk) on a loopback
/// port, with signature checking on. Stops when dropped.
pub struct S3Server {
    pub addr: SocketAddr,
    /// Where s3s-fs keeps buckets (`<root>/<bucket>/<key>`), for tests that
    /// need to damage an object behind the server's back.
    pub root: tempfile::TempDir,
    pub access_key: String,
    pub secret_key: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    pub fn start(buckets: &[&str]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        for b in buckets {
            std::fs::create_dir_all(root.path().join(b)).expect("bucket dir");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (access_key, secret_key) = (
            "labmesh-test".to_string(),
            "labmesh-test-secret".to_string(),
        );
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            access_key.clone(),
            secret_key.clone(),
        ));
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            addr,
            root,
            access_key,
            secret_key,
            runtime: Some(runtime),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment an AWS client needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT".into(), self.endpoint()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
