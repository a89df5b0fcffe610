//! `larder key`: create, list, show and revoke access keys.

use clap::Subcommand;
use larder::web::admin::{KeyView, NewKey};

use super::{print_json, ServerArgs};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; prints its secret once.
    Create {
        /// A name to know the key by.
        name: String,
        /// BUCKET[/PREFIX]:RIGHTS, rights from read, write, delete, list,
        /// owner, all, bypass-governance (repeatable). `*` as the bucket
        /// means every bucket.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// The key stops working after this long (e.g. 90m, 24h, 30d).
        #[arg(long)]
        expires: Option<String>,
        /// Addresses or CIDR ranges the key may be used from (repeatable).
        #[arg(long = "allow-from")]
        allow_from: Vec<String>,
        /// Use this access key instead of a new one (for automation).
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        /// Use this secret instead of a new one.
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
    },
    /// List keys.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show {
        access_key: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once, and every presigned URL it signed.
    Revoke { access_key: String },
}

pub fn print_key(key: &KeyView) {
    println!("access key: {}", key.access_key);
    if let Some(secret) = &key.secret_key {
        println!("secret key: {secret}");
    }
    println!("name:       {}", key.name);
    for grant in &key.grants {
        println!("grant:      {grant}");
    }
    if let Some(expires) = key.expires {
        println!("expires:    {}", larder::timefmt::format_iso8601(expires));
    }
    for cidr in &key.source_cidrs {
        println!("allow from: {cidr}");
    }
}

pub fn key_command(server: ServerArgs, command: KeyCommand) -> Result<(), String> {
    let server = server.resolve()?;
    let client = server.admin()?;
    match command {
        KeyCommand::Create { name, grants, expires, allow_from, access_key, secret_key } => {
            let expires = match expires {
                Some(text) => Some(larder::timefmt::now() + larder::timefmt::parse_duration(&text)?),
                None => None,
            };
            let key =
                client.create(&NewKey { name, grants, expires, source_cidrs: allow_from, access_key, secret_key })?;
            print_key(&key);
            println!("(the secret is shown only now)");
        }
        KeyCommand::List { json: true } => print_json(&client.list()?)?,
        KeyCommand::List { json: false } => {
            let keys = client.list()?;
            if keys.is_empty() {
                println!(
                    "no keys yet (besides the root key): `larder key create NAME --grant BUCKET:RIGHTS` makes one"
                );
            }
            for key in keys {
                let expires = key.expires.map(larder::timefmt::format_iso8601).unwrap_or_else(|| "never".into());
                println!("{}  {:<20}  expires {expires}  {}", key.access_key, key.name, key.grants.join(" "));
            }
        }
        KeyCommand::Show { access_key, json: true } => print_json(&client.show(&access_key)?)?,
        KeyCommand::Show { access_key, json: false } => print_key(&client.show(&access_key)?),
        KeyCommand::Revoke { access_key } => {
            client.revoke(&access_key)?;
            println!("revoked {access_key}");
        }
    }
    Ok(())
}
