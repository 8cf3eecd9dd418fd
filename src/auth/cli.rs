//! `shardline ticket issue`: mints a join ticket, for tests, tooling, and as
//! the reference for a studio's backend.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::auth::ticket::{issue, Grant};

#[derive(clap::Args, Debug)]
pub struct TicketCli {
    #[command(subcommand)]
    pub command: TicketCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TicketCommand {
    /// Print a signed ticket for a player.
    Issue {
        /// Shared secret (same as the server's --join-secret).
        #[arg(
            long,
            env = "SHARDLINE_JOIN_SECRET",
            hide_env_values = true,
            conflicts_with = "secret_file"
        )]
        secret: Option<String>,
        /// File holding the shared secret (trailing newline ignored).
        #[arg(long, value_name = "FILE")]
        secret_file: Option<std::path::PathBuf>,
        /// The studio's player id ([A-Za-z0-9_-], 1-64 bytes).
        #[arg(long)]
        player: String,
        /// Instance the ticket admits to, or "any". [default: any]
        #[arg(long, default_value = "any")]
        instance: String,
        /// Seconds the ticket stays valid. [default: 300]
        #[arg(long, default_value_t = 300)]
        ttl_s: u64,
        /// Grant creating the instance (or any instance, with --instance any): a v2 ticket, needed with the server's --create-policy ticket.
        #[arg(long)]
        create: bool,
        /// A claim about the player for the game (Game::on_join), KEY=VALUE, each 1-64 bytes of [A-Za-z0-9_-]; repeatable, at most 16: a v3 ticket.
        #[arg(long = "claim", value_name = "KEY=VALUE")]
        claims: Vec<String>,
    },
}

pub fn run(cli: TicketCli) -> anyhow::Result<()> {
    match cli.command {
        TicketCommand::Issue {
            secret,
            secret_file,
            player,
            instance,
            ttl_s,
            create,
            claims,
        } => {
            let claims = claims
                .iter()
                .map(|c| {
                    c.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .with_context(|| format!("--claim {c:?} is not KEY=VALUE"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let secret = load_secret(secret, secret_file.as_deref())?
                .context("give --secret or --secret-file")?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let mut nonce = [0u8; 16];
            getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("random: {e}"))?;
            let grant = Grant {
                player,
                instance: (instance != "any").then_some(instance),
                expires_unix_s: now + ttl_s,
                nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
                create,
                claims,
            };
            let ticket = issue(secret.as_bytes(), &grant);
            // Checked as the server will: a bad claim fails here, not at Hello.
            crate::auth::ticket::verify(secret.as_bytes(), &ticket, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{ticket}");
            Ok(())
        }
    }
}

/// The secret from a flag or a file (the file wins over nothing, not over the flag).
pub fn load_secret(
    secret: Option<String>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    if let Some(s) = secret {
        return Ok(Some(s));
    }
    match file {
        Some(path) => {
            let s = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read secret file {}", path.display()))?;
            let s = s.trim_end_matches(['\n', '\r']).to_owned();
            anyhow::ensure!(!s.is_empty(), "secret file {} is empty", path.display());
            Ok(Some(s))
        }
        None => Ok(None),
    }
}
