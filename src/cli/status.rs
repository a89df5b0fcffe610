//! `larder status`: what the running server is doing.

use super::{print_json, ServerArgs};

pub fn status_command(json: bool, server: ServerArgs) -> Result<(), String> {
    let server = server.resolve()?;
    let client = server.admin()?;
    let status = client.status()?;
    if json {
        return print_json(&status);
    }
    let text = |name: &str| status[name].as_str().unwrap_or("?").to_string();
    let number = |name: &str| status[name].as_u64().unwrap_or(0);
    let uptime = number("uptime_secs");
    println!("larder {}, up {}d {}h {}m", text("version"), uptime / 86_400, uptime / 3600 % 24, uptime / 60 % 60);
    println!("listening on   {} (links start with {})", text("listen"), text("public_url"));
    println!("data folder    {} (durability {})", text("data_dir"), text("durability"));
    println!("disk free      {:.1} GiB", number("disk_free_bytes") as f64 / f64::from(1u32 << 30));
    println!("stored         {} objects, {:.1} MiB", number("objects"), number("bytes") as f64 / f64::from(1u32 << 20));
    println!("live links     {}", number("live_links"));
    println!("clock          {} (system {}, larder {})", text("clock"), text("wall_clock"), text("larder_time"));
    println!("index          {} (recovery {})", text("index"), text("recovery"));
    match status.get("lifecycle").filter(|run| !run.is_null()) {
        Some(run) => println!("lifecycle      last run {}", super::lifecycle::describe_run(run)),
        None => println!("lifecycle      no run since the server started"),
    }
    Ok(())
}
