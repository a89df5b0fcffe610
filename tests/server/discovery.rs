//! How the `larder` command finds its settings: bare `larder` is `larder
//! serve` with every flag, variable and file honoured, and the other
//! commands read the configuration `serve` reads to find the server.

use std::path::Path;
use std::process::Stdio;

use crate::harness::*;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `larder ARGS` in `cwd`; returns it and the address it printed.
fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = crate::harness::larder_command()
        .args(args)
        .current_dir(cwd)
        .env_remove("LARDER_CONFIG")
        .env_remove("LARDER_DATA_DIR")
        .env_remove("LARDER_LISTEN")
        .env_remove("LARDER_ENDPOINT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(addr) = listening_address(&mut child) {
        return (child, addr);
    }
    let _ = child.wait();
    panic!("larder stopped before listening");
}

fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = crate::harness::larder_command()
        .args(args)
        .current_dir(cwd)
        .env_remove("LARDER_CONFIG")
        .env_remove("LARDER_DATA_DIR")
        .env_remove("LARDER_ENDPOINT")
        .env_remove("LARDER_ROOT_ACCESS_KEY")
        .env_remove("LARDER_ROOT_SECRET_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn bare_larder_serves_with_the_environment() {
    let dir = unique_dir("bare");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("elsewhere");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (child, addr) = start(&dir, &[], &[("LARDER_LISTEN", &listen), ("LARDER_DATA_DIR", data.to_str().unwrap())]);
    assert_eq!(addr, listen);
    assert!(data.join("root-key.toml").exists(), "LARDER_DATA_DIR was ignored");
    assert!(!dir.join("larder-data").exists());
    stop(child, libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn commands_find_the_server_through_its_configuration() {
    let dir = unique_dir("discovery");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let data = dir.join("data");
    let port = free_port();
    let config = dir.join("larder.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n", data.display())).unwrap();
    // ./larder.toml, found by bare `larder` in its folder.
    let (child, addr) = start(&dir, &[], &[]);
    assert_eq!(addr, format!("127.0.0.1:{port}"));

    // From the same folder, with no flag: endpoint and root key found.
    let (ok, text) = run(&dir, &["key", "create", "found", "--grant", "*:read"], &[]);
    assert!(ok, "{text}");
    // From another folder, through LARDER_CONFIG or --config.
    let config_path = config.to_str().unwrap();
    let (ok, text) = run(&elsewhere, &["key", "list"], &[("LARDER_CONFIG", config_path)]);
    assert!(ok && text.contains("found"), "{text}");
    let (ok, text) = run(&elsewhere, &["key", "list", "--config", config_path], &[]);
    assert!(ok && text.contains("found"), "{text}");
    // Without it, the defaults: no root key there, and the error says so.
    let (ok, text) = run(&elsewhere, &["key", "list"], &[]);
    assert!(!ok && text.contains("larder-data"), "{text}");
    stop(child, libc::SIGTERM);

    // A server that is not there: the address tried, within seconds.
    let started = std::time::Instant::now();
    let (ok, text) = run(&dir, &["key", "list"], &[]);
    assert!(!ok && text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // A configuration file that does not read names itself.
    let (ok, text) = run(&elsewhere, &["key", "list", "--config", "/nonexistent/larder.toml"], &[]);
    assert!(!ok && text.contains("/nonexistent/larder.toml"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
