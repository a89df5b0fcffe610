//! larder on a LAN, as a second device sees it: the server runs in one
//! network namespace and the client in another, joined by a veth pair.
//! `larder share` prints links with the address other devices reach (the
//! interface on the default route), the QR code it draws decodes to the
//! short link, and the client downloads the file by the short link and by
//! the full URL. Needs root (namespaces); says so and passes otherwise.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::*;

/// Two namespaces and the veth pair between them, removed on drop.
struct Lan {
    server: String,
    client: String,
}

const SERVER_ADDRESS: &str = "10.213.7.1";
const CLIENT_ADDRESS: &str = "10.213.7.2";

impl Lan {
    fn new() -> Option<Lan> {
        let id = std::process::id() % 100_000;
        let lan = Lan { server: format!("larder-srv-{id}"), client: format!("larder-cli-{id}") };
        let ip =
            |args: &[&str]| Command::new("ip").args(args).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        if !ip(&["netns", "add", &lan.server]) {
            return None;
        }
        let (veth_server, veth_client) = (format!("lsv{id}"), format!("lcl{id}"));
        let steps: Vec<Vec<String>> = [
            vec!["netns", "add", &lan.client],
            vec!["link", "add", &veth_server, "type", "veth", "peer", "name", &veth_client],
            vec!["link", "set", &veth_server, "netns", &lan.server],
            vec!["link", "set", &veth_client, "netns", &lan.client],
            vec!["-n", &lan.server, "addr", "add", &format!("{SERVER_ADDRESS}/24"), "dev", &veth_server],
            vec!["-n", &lan.client, "addr", "add", &format!("{CLIENT_ADDRESS}/24"), "dev", &veth_client],
            vec!["-n", &lan.server, "link", "set", &veth_server, "up"],
            vec!["-n", &lan.client, "link", "set", &veth_client, "up"],
            vec!["-n", &lan.server, "link", "set", "lo", "up"],
            vec!["-n", &lan.client, "link", "set", "lo", "up"],
            // As on a home network: the router is the way out.
            vec!["-n", &lan.server, "route", "add", "default", "via", CLIENT_ADDRESS],
        ]
        .iter()
        .map(|step| step.iter().map(|arg| arg.to_string()).collect())
        .collect();
        for step in steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            assert!(ip(&args), "ip {}", args.join(" "));
        }
        Some(lan)
    }

    fn command(&self, namespace: &str, argv: &[String]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace]).args(argv);
        command
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for namespace in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "delete", namespace]).status();
        }
    }
}

/// Reads the QR code `larder` drew (half-block characters, light modules
/// drawn bright for a dark terminal) back into an image and decodes it.
/// Returns the text and the QR version.
fn decode_qr(drawing: &str) -> (String, usize) {
    let rows: Vec<Vec<char>> = drawing
        .lines()
        .filter(|line| !line.is_empty() && line.chars().all(|c| matches!(c, ' ' | '█' | '▀' | '▄')))
        .map(|line| line.chars().collect())
        .collect();
    assert!(!rows.is_empty(), "no QR code in:\n{drawing}");
    let width = rows.iter().map(Vec::len).max().unwrap();
    // One module per character across, two down; true = dark module.
    let mut modules = vec![vec![false; width]; rows.len() * 2];
    for (row, line) in rows.iter().enumerate() {
        for (column, c) in line.iter().enumerate() {
            let (upper_bright, lower_bright) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            modules[row * 2][column] = !upper_bright;
            modules[row * 2 + 1][column] = !lower_bright;
        }
    }
    const SCALE: usize = 6;
    let height = modules.len();
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width * SCALE, height * SCALE, |x, y| {
        if modules[y / SCALE][x / SCALE] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (meta, text) = grids[0].decode().expect("the QR code decodes");
    (text, meta.version.0)
}

fn larder_in(lan: &Lan, namespace: &str, args: &[&str], dir: &Path) -> Command {
    let mut command = lan.command(namespace, &crate::harness::larder_argv());
    let credentials = test_credentials();
    command
        .args(args)
        .current_dir(dir)
        .env("LARDER_ROOT_ACCESS_KEY", &credentials.access_key)
        .env("LARDER_ROOT_SECRET_KEY", &credentials.secret_key)
        .env_remove("LARDER_CONFIG")
        .env_remove("LARDER_PUBLIC_URL")
        .env_remove("LARDER_ENDPOINT");
    command
}

#[test]
fn a_second_device_opens_a_shared_file() {
    let Some(lan) = Lan::new() else {
        eprintln!("skipped: network namespaces need root");
        return;
    };
    let dir = unique_dir("lan");
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let mut server = larder_in(&lan, &lan.server, &["serve", "--listen", "0.0.0.0:9000", "--data-dir"], &dir)
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut printed = String::new();
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut reader, &mut printed).unwrap();
    }
    let public_url = format!("http://{SERVER_ADDRESS}:9000");
    let file = dir.join("holiday.jpg");
    let bytes = pattern(700_000, 5);
    std::fs::write(&file, &bytes).unwrap();
    // The owner shares from the board itself.
    let shared = larder_in(&lan, &lan.server, &["share", "--endpoint", "http://127.0.0.1:9000"], &dir)
        .arg(&file)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&shared.stdout).into_owned();
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    assert!(printed.contains(&format!("links start with {public_url}")), "{printed}");
    assert!(shared.status.success(), "{out}{}", String::from_utf8_lossy(&shared.stderr));
    let field = |name: &str| out.lines().find_map(|l| l.trim().strip_prefix(name)).unwrap().trim().to_string();
    let (short, full) = (field("link:"), field("full:"));
    assert!(short.starts_with(&format!("{public_url}/s/")), "{short}");
    assert!(full.starts_with(&format!("{public_url}/shared/")), "{full}");
    let (scanned, version) = decode_qr(&out);
    assert_eq!(scanned, short, "the QR code is the short link");
    eprintln!("QR code of {} characters: version {version}", short.len());
    assert!(version <= 4, "a QR code of version {version} is too dense to scan across a table");

    // Restarted for the client's turn (the share outlives the server).
    let mut server = larder_in(&lan, &lan.server, &["serve", "--listen", "0.0.0.0:9000", "--data-dir"], &dir)
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listening_address(&mut server);
    let download = |url: &str, output: &Path| {
        lan.command(&lan.client, &["curl".to_string()])
            .args(["-sS", "-f", "-L", "--max-time", "30", "-o"])
            .arg(output)
            .arg(url)
            .status()
            .unwrap()
            .success()
    };
    let by_short = download(&short, &dir.join("by-short"));
    let by_full = download(&full, &dir.join("by-full"));
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    assert!(by_short && by_full, "the client could not download");
    assert!(std::fs::read(dir.join("by-short")).unwrap() == bytes);
    assert!(std::fs::read(dir.join("by-full")).unwrap() == bytes);
    let _ = std::fs::remove_dir_all(&dir);
}
