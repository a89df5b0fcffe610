//! HTTPS built in: a self-signed certificate made on first start, HTTP and
//! HTTPS side by side, presigned URLs over HTTPS, certificate files read
//! again on SIGHUP-style reloads, and clear errors for bad settings.

use std::process::Command;

use crate::harness::*;

fn curl(args: &[&str]) -> (bool, Vec<u8>, String) {
    let output = Command::new("curl").args(["-sS", "--max-time", "20"]).args(args).output().unwrap();
    (output.status.success(), output.stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn https_beside_http_with_a_self_signed_certificate() {
    let server = TestServer::start_in_process(unique_dir("https"), |config| {
        config.tls = Some("self-signed".into());
        config.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    });
    let running = server.running();
    let tls_addr = running.tls_addr().expect("HTTPS listens");
    let certificates = running.certificates().expect("a certificate");
    let cert = certificates.certificate_file().to_path_buf();
    assert!(cert.starts_with(&server.dir), "kept in the data folder: {}", cert.display());
    let fingerprint = certificates.fingerprint();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert_eq!(running.public_url(), format!("https://{tls_addr}"));

    let client = server.client();
    create_bucket(&client, "secure");
    put(&client, "secure", "file.txt", b"over https");
    // A presigned URL made for the HTTPS address, fetched by curl trusting
    // the certificate file.
    let secure_client = Client { addr: tls_addr, ..client.clone() };
    let target = secure_client.presigned_target(&Request::new("GET", "secure", "file.txt").auth(Auth::Presigned(300)));
    let url = format!("https://{tls_addr}{target}");
    let (ok, body, err) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
    assert!(ok, "{err}");
    assert_eq!(body, b"over https");
    // Without trusting it, curl refuses (it is not a public certificate).
    let (ok, _, _) = curl(&[&url]);
    assert!(!ok, "curl accepted an unknown certificate");
    // Plain HTTP to the HTTPS port is no request.
    let (ok, _, _) = curl(&[&format!("http://{tls_addr}/")]);
    assert!(!ok);

    // The certificate is made once and kept.
    let dir = server.stop();
    let again = TestServer::start_in_process(dir, |config| {
        config.tls = Some("self-signed".into());
        config.listen_tls = Some("127.0.0.1:0".parse().unwrap());
    });
    assert_eq!(again.running().certificates().unwrap().fingerprint(), fingerprint);
}

#[test]
fn bad_tls_settings_stop_startup_with_one_clear_line() {
    let dir = unique_dir("bad-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("larder.toml");
    let run = |toml: &str| {
        std::fs::write(&config, toml).unwrap();
        let output = crate::harness::larder_command()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(run("tls = \"yes\"\n").contains("tls: expected \"self-signed\""));
    assert!(run("tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n")
        .contains("/nonexistent/cert.pem"));
    assert!(run("public_url = \"192.168.1.20:9000\"\n").contains("public_url: expected an absolute http(s) URL"));
    // A certificate with another certificate's key.
    let one = rcgen::generate_simple_self_signed(vec!["one".into()]).unwrap();
    let two = rcgen::generate_simple_self_signed(vec!["two".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), one.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), two.key_pair.serialize_pem()).unwrap();
    let stderr = run(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    ));
    assert!(stderr.contains("do not belong together"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Certificate files are read again on SIGHUP: a renewal needs no restart.
#[test]
fn sighup_reads_the_certificate_files_again() {
    let dir = unique_dir("tls-reload");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let issue = |name: &str| {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), name.into()]).unwrap();
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let copy = dir.join(format!("{name}.pem"));
        std::fs::write(&copy, made.cert.pem()).unwrap();
        copy
    };
    let first = issue("first");
    let config = dir.join("larder.toml");
    std::fs::write(&config, format!("tls_cert = \"{}\"\ntls_key = \"{}\"\n", cert.display(), key.display())).unwrap();
    let (child, addr) = spawn_server_with(&dir.join("data"), &[("LARDER_CONFIG", config.to_str().unwrap())]);
    let health = format!("https://{addr}/_larder/health");
    assert!(curl(&["--cacert", first.to_str().unwrap(), &health]).0, "the first certificate is served");
    let second = issue("second");
    assert!(!curl(&["--cacert", second.to_str().unwrap(), &health]).0, "not yet read again");
    crate::storage::unsafe_kill(child.id(), libc::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !curl(&["--cacert", second.to_str().unwrap(), &health]).0 {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not bring the new certificate");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    stop(child, libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With HTTPS only, the command line finds the server through the same
/// configuration, speaks HTTPS to it and trusts exactly its certificate.
#[test]
fn the_command_line_speaks_https_to_its_server() {
    let dir = unique_dir("tls-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        dir.join("larder.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\ntls = \"self-signed\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let larder = |args: &[&str]| {
        let mut command = crate::harness::larder_command();
        command
            .args(args)
            .current_dir(&dir)
            .env_remove("LARDER_CONFIG")
            .env_remove("LARDER_DATA_DIR")
            .env_remove("LARDER_ENDPOINT")
            .env_remove("LARDER_ROOT_ACCESS_KEY")
            .env_remove("LARDER_ROOT_SECRET_KEY");
        command
    };
    let mut server = larder(&["serve"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    listening_address(&mut server);
    let file = dir.join("note.txt");
    std::fs::write(&file, b"shared over https").unwrap();
    let shared = larder(&["share"]).arg(&file).output().unwrap();
    let listed = larder(&["key", "list"]).output().unwrap();
    crate::storage::unsafe_kill(server.id(), libc::SIGTERM);
    let _ = server.wait();
    let out = String::from_utf8_lossy(&shared.stdout);
    assert!(shared.status.success(), "{out}{}", String::from_utf8_lossy(&shared.stderr));
    assert!(out.contains("link:    https://"), "{out}");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
