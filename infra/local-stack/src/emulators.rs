//! The AWS API emulators of the local stack, run as child processes bound to
//! 127.0.0.1:
//!
//! - moto (`.venv/bin/moto_server`, PyPI `moto[server]`): DynamoDB and
//!   Secrets Manager;
//! - fauxqs (`node infra/node/fauxqs-server.mjs`, npm `fauxqs`): SQS.
//!
//! Both are installed by `make setup` (`infra/scripts/setup.sh`). Their output
//! goes to `target/local-stack-logs/<name>-<port>.log`; a failed start reports
//! the tail of that log. A child dies when its [`Emulator`] is dropped, and on
//! Linux also when this process dies in any way (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// How long an emulator may take to answer HTTP after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a start on a port picked by us (`port == 0`) is retried
/// with another port when the child exits early (the port was taken between
/// [`free_port`] and the child's bind).
const PORT_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{name} is not installed ({} not found); run `make setup`", path.display())]
    NotInstalled { name: &'static str, path: PathBuf },

    #[error("could not start {name} ({program}): {source}; run `make setup`")]
    Spawn {
        name: &'static str,
        program: String,
        source: io::Error,
    },

    #[error("could not create the log file {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },

    #[error("{name} exited before it was ready ({status}); last lines of {}:\n{tail}", log.display())]
    Exited {
        name: &'static str,
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },

    #[error("{name} did not answer on 127.0.0.1:{port} within {}s; last lines of {}:\n{tail}", timeout.as_secs(), log.display())]
    Timeout {
        name: &'static str,
        port: u16,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
}

/// The repository root: `$RSVP_REPO_ROOT` when set, else two levels above this
/// crate's manifest (`infra/local-stack`).
pub fn repo_root() -> PathBuf {
    match std::env::var_os("RSVP_REPO_ROOT") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .expect("infra/local-stack has two parents")
            .to_path_buf(),
    }
}

/// Where child process logs go: `$CARGO_TARGET_DIR/local-stack-logs` when that
/// is an absolute path, else `<repo root>/target/local-stack-logs`.
pub fn log_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("local-stack-logs")
}

/// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it,
/// release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running emulator. Dropping it kills the child process and waits for it.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    pub port: u16,
    name: &'static str,
    log: PathBuf,
}

impl Emulator {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_*` or an SDK's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Kills the child and waits for it to exit (the same as dropping it).
    pub fn stop(self) {}
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto (DynamoDB, Secrets Manager) on 127.0.0.1:`port` (0: a free port).
pub async fn spawn_moto(port: u16) -> Result<Emulator, EmulatorError> {
    spawn_moto_in(&repo_root(), port).await
}

/// [`spawn_moto`] with the tools taken from the repository at `root`.
pub async fn spawn_moto_in(root: &Path, port: u16) -> Result<Emulator, EmulatorError> {
    let program = root.join(".venv/bin/python");
    // Our launcher serializes requests (see its docstring).
    let launcher = root.join("infra/moto-server.py");
    if !program.is_file() {
        return Err(EmulatorError::NotInstalled {
            name: "moto",
            path: program,
        });
    }
    spawn_with_retry(port, |port| Spec {
        name: "moto",
        command: {
            let mut c = Command::new(&program);
            c.arg(&launcher)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONUNBUFFERED", "1")
                .current_dir(root);
            c
        },
        program: program.display().to_string(),
        // werkzeug prints this once its socket is bound.
        ready_line: format!("Running on http://127.0.0.1:{port}"),
        probe_path: "/moto-api/",
        port,
    })
    .await
}

/// fauxqs (SQS) on 127.0.0.1:`port` (0: a free port).
pub async fn spawn_fauxqs(port: u16) -> Result<Emulator, EmulatorError> {
    spawn_fauxqs_in(&repo_root(), port).await
}

/// [`spawn_fauxqs`] with the tools taken from the repository at `root`.
pub async fn spawn_fauxqs_in(root: &Path, port: u16) -> Result<Emulator, EmulatorError> {
    let script = root.join("infra/node/fauxqs-server.mjs");
    let package = root.join("infra/node/node_modules/fauxqs/package.json");
    for path in [&script, &package] {
        if !path.is_file() {
            return Err(EmulatorError::NotInstalled {
                name: "fauxqs",
                path: path.clone(),
            });
        }
    }
    spawn_with_retry(port, |port| Spec {
        name: "fauxqs",
        command: {
            let mut c = Command::new("node");
            c.arg(&script)
                .arg(port.to_string())
                .env_remove("FAUXQS_PORT")
                .current_dir(root);
            c
        },
        program: "node".to_string(),
        ready_line: format!("fauxqs ready on http://127.0.0.1:{port}"),
        probe_path: "/health",
        port,
    })
    .await
}

struct Spec {
    name: &'static str,
    command: Command,
    program: String,
    ready_line: String,
    probe_path: &'static str,
    port: u16,
}

async fn spawn_with_retry(
    port: u16,
    spec: impl Fn(u16) -> Spec,
) -> Result<Emulator, EmulatorError> {
    if port != 0 {
        return start(spec(port)).await;
    }
    let mut attempt = 1;
    loop {
        match start(spec(free_port())).await {
            Err(EmulatorError::Exited { .. }) if attempt < PORT_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

async fn start(spec: Spec) -> Result<Emulator, EmulatorError> {
    let Spec {
        name,
        mut command,
        program,
        ready_line,
        probe_path,
        port,
    } = spec;

    let dir = log_dir();
    let log = dir.join(format!("{name}-{port}.log"));
    let log_err = |source| EmulatorError::Log {
        path: log.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(log_err)?;
    prune_old_logs(&dir);
    let out = File::create(&log).map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    die_with_parent(&mut command);

    let child = spawn_from_long_lived_thread(command)
        .await
        .map_err(|source| EmulatorError::Spawn {
            name,
            program,
            source,
        })?;
    let mut emulator = Emulator {
        child,
        port,
        name,
        log,
    };

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = emulator.child.try_wait() {
            return Err(EmulatorError::Exited {
                name,
                status,
                tail: log_tail(&emulator.log),
                log: emulator.log.clone(),
            });
        }
        // The ready line proves that this child bound the port (and not some
        // other process that got it first); the probe that it answers HTTP.
        let bound = std::fs::read_to_string(&emulator.log)
            .map(|text| text.contains(&ready_line))
            .unwrap_or(false);
        if bound && answers_http(port, probe_path).await {
            return Ok(emulator);
        }
        if Instant::now() >= deadline {
            return Err(EmulatorError::Timeout {
                name,
                port,
                timeout: START_TIMEOUT,
                tail: log_tail(&emulator.log),
                log: emulator.log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether something on 127.0.0.1:`port` answers a GET with an HTTP status line.
async fn answers_http(port: u16, path: &str) -> bool {
    let attempt = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        let mut sent = 0;
        while sent < request.len() {
            stream.writable().await?;
            match stream.try_write(&request.as_bytes()[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 5 {
            stream.readable().await?;
            match stream.try_read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<bool, io::Error>(buf[..got].starts_with(b"HTTP/"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// Removes logs older than a day, once per process, so that the per-port log
/// files of many test runs do not pile up.
fn prune_old_logs(dir: &Path) {
    static PRUNED: OnceLock<()> = OnceLock::new();
    PRUNED.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let day = Duration::from_secs(24 * 60 * 60);
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    });
}

fn log_tail(log: &Path) -> String {
    const LINES: usize = 20;
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
            if tail.trim().is_empty() {
                "(empty)".to_string()
            } else {
                tail
            }
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

/// On Linux, the child gets SIGKILL when the thread that spawned it ends, so
/// the emulators do not outlive a crashed or killed parent.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe, and the closure
    // allocates nothing, as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

type SpawnJob = (Command, tokio::sync::oneshot::Sender<io::Result<Child>>);

/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so
/// children are forked from one thread that lives as long as the process:
/// emulators started by one test (or a `tokio::spawn`ed task, or a blocking
/// pool thread) and shared with others are not killed when it ends.
async fn spawn_from_long_lived_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<std::sync::Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("emulator-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the emulator-spawner thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = tokio::sync::oneshot::channel();
    spawner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("emulator-spawner thread is gone"))?;
    answer
        .await
        .map_err(|_| io::Error::other("emulator-spawner thread is gone"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

    fn creds() -> Credentials {
        Credentials::new("test", "test", None, None, "emulator-test")
    }

    async fn port_is_closed(port: u16) -> bool {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    }

    #[tokio::test]
    async fn moto_and_fauxqs_start_answer_the_sdks_and_die_on_drop() {
        let started = Instant::now();
        let (moto, fauxqs) = tokio::join!(spawn_moto(0), spawn_fauxqs(0));
        let (moto, fauxqs) = (moto.unwrap(), fauxqs.unwrap());
        eprintln!("moto and fauxqs up in {:?}", started.elapsed());
        assert_eq!(moto.endpoint(), format!("http://127.0.0.1:{}", moto.port));
        assert_ne!(moto.port, fauxqs.port);

        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(creds())
                .endpoint_url(moto.endpoint())
                .build(),
        );
        dynamodb.list_tables().send().await.unwrap();

        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(creds())
                .endpoint_url(moto.endpoint())
                .build(),
        );
        secrets
            .create_secret()
            .name("emulator-test")
            .secret_string("s3cr3t")
            .send()
            .await
            .unwrap();
        let value = secrets
            .get_secret_value()
            .secret_id("emulator-test")
            .send()
            .await
            .unwrap();
        assert_eq!(value.secret_string(), Some("s3cr3t"));

        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(creds())
                .endpoint_url(fauxqs.endpoint())
                .build(),
        );
        let queue_url = sqs
            .create_queue()
            .queue_name("emulator-test")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        assert_eq!(
            queue_url,
            format!("{}/000000000000/emulator-test", fauxqs.endpoint())
        );
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body("hello")
            .send()
            .await
            .unwrap();
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        assert_eq!(received.messages()[0].body(), Some("hello"));

        let (moto_port, fauxqs_port) = (moto.port, fauxqs.port);
        let log = moto.log_path().to_path_buf();
        drop(moto);
        fauxqs.stop();
        assert!(port_is_closed(moto_port).await, "moto still listening");
        assert!(port_is_closed(fauxqs_port).await, "fauxqs still listening");
        assert!(log.starts_with(log_dir()), "{}", log.display());
    }

    #[tokio::test]
    async fn fixed_port_is_used() {
        let port = free_port();
        let fauxqs = spawn_fauxqs(port).await.unwrap();
        assert_eq!(fauxqs.port, port);
        assert!(answers_http(port, "/health").await);
    }

    #[tokio::test]
    async fn missing_tools_say_run_make_setup() {
        let empty = std::env::temp_dir().join(format!("rsvp-no-tools-{}", std::process::id()));
        for err in [
            spawn_moto_in(&empty, 0).await.unwrap_err(),
            spawn_fauxqs_in(&empty, 0).await.unwrap_err(),
        ] {
            assert!(matches!(err, EmulatorError::NotInstalled { .. }), "{err}");
            assert!(err.to_string().contains("run `make setup`"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_taken_port_fails_with_the_log_tail() {
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = spawn_fauxqs(port).await.unwrap_err();
        let EmulatorError::Exited { tail, .. } = &err else {
            panic!("expected Exited, got {err}");
        };
        assert!(tail.contains("cannot listen"), "{err}");
    }
}
