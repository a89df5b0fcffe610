//! larder under systemd: the notification protocol (`Type=notify`) spoken
//! to a socket the test owns, and logs fit for the journal.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{listening_address, test_credentials, unique_dir};

/// The datagrams that arrive within `wait`, until `until` is among them.
fn receive_until(socket: &UnixDatagram, until: &str, wait: Duration) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buffer) {
            Ok(read) => {
                let message = String::from_utf8_lossy(&buffer[..read]).into_owned();
                let done = message.lines().any(|line| line == until);
                received.push(message);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    received
}

fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    let credentials = test_credentials();
    crate::harness::larder_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("LARDER_ROOT_ACCESS_KEY", &credentials.access_key)
        .env("LARDER_ROOT_SECRET_KEY", &credentials.secret_key)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("JOURNAL_STREAM")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate(child: &std::process::Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
}

#[test]
fn ready_watchdog_and_stopping_reach_the_notify_socket() {
    let dir = unique_dir("notify");
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let data = dir.join("data");
    let mut child = serve(
        &data,
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "400000"), ("RUST_LOG", "warn")],
    );
    let addr = listening_address(&mut child).expect("the server starts");

    // READY=1 comes once the port is open, then the watchdog every 0.2 s.
    let received = receive_until(&socket, "READY=1", Duration::from_secs(20));
    let ready = received.iter().find(|m| m.lines().any(|l| l == "READY=1")).expect("READY=1 arrives");
    // Before it is ready, larder asks systemd for more time to start.
    assert!(received[0].starts_with("EXTEND_TIMEOUT_USEC="), "{received:?}");
    assert!(ready.contains(&format!("STATUS=serving on {addr}")), "{ready}");
    std::net::TcpStream::connect(&addr).expect("ready means the port answers");
    let pings = receive_until(&socket, "never", Duration::from_secs(2));
    let watchdogs = pings.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
    assert!(watchdogs >= 3, "{pings:?}");

    terminate(&child);
    let stopping = receive_until(&socket, "STOPPING=1", Duration::from_secs(20));
    assert!(stopping.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")), "{stopping:?}");
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_watchdog_meant_for_another_process_is_left_alone() {
    let dir = unique_dir("notify-pid");
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut child = serve(
        &dir.join("data"),
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    listening_address(&mut child).expect("the server starts");
    let received = receive_until(&socket, "never", Duration::from_secs(2));
    assert!(received.iter().any(|m| m.contains("READY=1")), "{received:?}");
    assert!(!received.iter().any(|m| m == "WATCHDOG=1"), "{received:?}");
    terminate(&child);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logs read as plain lines: no colour codes when stderr is not a
/// terminal, and no timestamp of larder's own under the journal.
#[test]
fn logs_for_the_journal_carry_no_colours_or_timestamps() {
    for journal in [false, true] {
        let dir = unique_dir("journal");
        let env: &[(&str, &str)] =
            if journal { &[("RUST_LOG", "info"), ("JOURNAL_STREAM", "8:12345")] } else { &[("RUST_LOG", "info")] };
        let mut child = serve(&dir, env);
        listening_address(&mut child).expect("the server starts");
        terminate(&child);
        let output = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(log.contains("shutting down"), "{log}");
        assert!(!log.contains('\u{1b}'), "colour codes in {log}");
        let stamped = log.lines().filter(|line| line.starts_with("20")).count();
        if journal {
            assert_eq!(stamped, 0, "timestamps under the journal: {log}");
        } else {
            assert!(stamped > 0, "no timestamps on a plain stderr: {log}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// With `group_access` (what the Debian package sets), a member of the
/// data folder's group runs `larder status` without root; anyone else is
/// told which file they cannot read. Without it, the folder is 0700.
#[test]
fn group_access_lets_the_group_use_the_command_line() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let settings = |group_access: bool| {
        move |config: &mut larder::config::Config| {
            config.root_credentials = None;
            config.group_access = group_access;
            config.tls = Some("self-signed".into());
            config.listen_tls = Some("127.0.0.1:0".parse().unwrap());
        }
    };
    // Made without group access: the owner's alone.
    let private = crate::harness::TestServer::start_in(unique_dir("group"), settings(false));
    let key_file = private.dir.join("root-key.toml");
    assert_eq!((mode(&private.dir), mode(&key_file)), (0o700, 0o600));
    assert_eq!(mode(&private.dir.join("tls")), 0o700);
    // Turned on later, it opens the folder, key and certificate to the group.
    let server = crate::harness::TestServer::start_in(private.stop(), settings(true));
    assert_eq!((mode(&server.dir), mode(&key_file)), (0o750, 0o640));
    assert_eq!(mode(&server.dir.join("tls")), 0o750);
    assert_eq!(mode(&server.dir.join("tls/self-signed.pem")), 0o644);
    assert_eq!(mode(&server.dir.join("tls/self-signed.key")), 0o600);
    assert_eq!(mode(&server.dir.join("blobs")), 0o700);

    let can_switch_user = effective_uid() == 0
        && std::process::Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success());
    if !can_switch_user {
        eprintln!("skipped the run as another user: needs root and setpriv");
        return;
    }
    // The folder and key file belong to a group the test makes up.
    let group = "54321";
    for path in [&server.dir, &key_file] {
        std::process::Command::new("chgrp").args([group]).arg(path).status().unwrap();
    }
    // The configuration the package installs, readable by all.
    let config_file = crate::harness::unique_dir("group-config");
    std::fs::write(&config_file, format!("data_dir = {:?}\ngroup_access = true\n", server.dir)).unwrap();
    std::fs::set_permissions(&config_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let status_as = |groups: &str| {
        let mut command = std::process::Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", &format!("--groups={groups}"), "--"]);
        command
            .args(crate::harness::larder_argv())
            .args(["status", "--endpoint", &format!("http://{}", server.addr)])
            .env_remove("LARDER_ROOT_ACCESS_KEY")
            .env_remove("LARDER_ROOT_SECRET_KEY")
            .env_remove("LARDER_DATA_DIR")
            .env("LARDER_CONFIG", &config_file)
            .current_dir("/")
            .output()
            .unwrap()
    };
    let member = status_as(group);
    assert!(member.status.success(), "{}", String::from_utf8_lossy(&member.stderr));
    assert!(String::from_utf8_lossy(&member.stdout).contains("objects"));
    let stranger = status_as("65534");
    assert!(!stranger.status.success());
    let message = String::from_utf8_lossy(&stranger.stderr);
    assert!(message.contains("root-key.toml") && message.contains("permission denied"), "{message}");
    let _ = std::fs::remove_file(&config_file);
}

/// The effective user id, read from /proc (no libc call in the tests).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// Socket activation: systemd (here `systemd-socket-activate`, which
/// passes a socket the way systemd does) opens the port; larder serves on
/// the socket it is given, whatever `listen` says.
#[test]
fn a_socket_systemd_opened_is_served() {
    if std::process::Command::new("systemd-socket-activate").arg("--version").output().is_err() {
        panic!("systemd-socket-activate is missing (Debian package systemd; scripts/install-deps.sh installs it)");
    }
    let dir = unique_dir("socket-activation");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let credentials = test_credentials();
    let mut activator = Command::new("systemd-socket-activate")
        .args(["-l", &format!("127.0.0.1:{port}")])
        .arg(format!("--setenv=LARDER_ROOT_ACCESS_KEY={}", credentials.access_key))
        .arg(format!("--setenv=LARDER_ROOT_SECRET_KEY={}", credentials.secret_key))
        .arg("--setenv=RUST_LOG=warn")
        .args(crate::harness::larder_argv())
        // A port nobody could serve: the inherited socket must be used.
        .args(["serve", "--listen", "127.0.0.1:1", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // systemd-socket-activate listens first; the first connection starts
    // larder, which answers on the socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "systemd-socket-activate did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = crate::harness::client_of(format!("127.0.0.1:{port}").parse().unwrap());
    crate::harness::create_bucket(&client, "activated");
    let health = client.send(&crate::harness::Request::new("GET", "_larder", "health"));
    health.assert_status(200);
    let line = listening_address(&mut activator).expect("larder says where it listens");
    assert_eq!(line, format!("127.0.0.1:{port}"));
    terminate(&activator);
    let _ = activator.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
