//! Your own game server binary: the library's `shardline` command line —
//! `serve` with every flag, snapshots, metrics, the admin API and the
//! fleet, and every other subcommand — serving a studio's game instead of
//! the reference arena.
//!
//! ```no_run
//! use shardline::game::{ArenaFactory, GameFactory};
//!
//! fn main() -> anyhow::Result<()> {
//!     // A fixed game:
//!     shardline::Server::builder().game(ArenaFactory).from_args().run()
//! }
//! ```
//!
//! A game with settings reads the `[game]` table of `--config FILE` and
//! `--game KEY=VALUE` flags with [`ServerBuilder::game_with`].

use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, MakeGame};
use crate::game::GameFactory;

/// Entry point of a studio's binary: [`Server::builder`].
pub struct Server;

impl Server {
    /// A builder serving the reference arena until [`ServerBuilder::game`]
    /// names another game.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            make: Box::new(crate::cli::arena),
            name: None,
        }
    }
}

/// What the binary serves and how it is called.
pub struct ServerBuilder {
    make: Box<MakeGame>,
    name: Option<String>,
}

impl ServerBuilder {
    /// Serves `factory`'s game. It takes no settings: a non-empty `[game]`
    /// table or a `--game` flag is refused at start (use
    /// [`game_with`](Self::game_with) for a game with settings).
    pub fn game(mut self, factory: impl GameFactory) -> Self {
        let factory: Arc<dyn GameFactory> = Arc::new(factory);
        self.make = Box::new(move |settings: &toml::Table| match settings.keys().next() {
            Some(key) => Err(format!(
                "the game {} takes no settings (got {key:?})",
                factory.name()
            )),
            None => Ok(factory.clone()),
        });
        self
    }

    /// Serves the game `make` builds from its settings: the `[game]` table
    /// of `--config FILE` with every `--game KEY=VALUE` flag applied over
    /// it. `Err(reason)` stops the start with that reason.
    pub fn game_with<F, M>(mut self, make: M) -> Self
    where
        F: GameFactory,
        M: Fn(&toml::Table) -> Result<F, String> + Send + Sync + 'static,
    {
        self.make = Box::new(move |settings: &toml::Table| {
            make(settings).map(|f| Arc::new(f) as Arc<dyn GameFactory>)
        });
        self
    }

    /// The command's name in `--help` and errors (default: the name the
    /// binary was started with).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Reads the process's arguments. `--help`, `--version` and a bad
    /// argument print and exit here, as `shardline` does.
    pub fn from_args(self) -> Launch {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        match self.try_from_args(args) {
            Ok(launch) => launch,
            Err(e) => e.exit(),
        }
    }

    /// Reads `args` (the first is the program's name).
    pub fn try_from_args<I, T>(self, args: I) -> Result<Launch, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let name = self.name.clone().unwrap_or_else(|| {
            args.first()
                .map(std::path::Path::new)
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "shardline".to_owned())
        });
        // clap keeps command names as &'static str: one small string per
        // parse, which a binary does once.
        let name: &'static str = Box::leak(name.into_boxed_str());
        let command = Cli::command().name(name).bin_name(name);
        let matches = command.try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        Ok(Launch {
            cli,
            make: self.make,
        })
    }
}

/// A parsed command line with its game, ready to [`run`](Launch::run).
pub struct Launch {
    cli: Cli,
    make: Box<MakeGame>,
}

impl Launch {
    /// Runs the command (`serve` until SIGINT/SIGTERM, or a one-shot
    /// subcommand).
    pub fn run(self) -> anyhow::Result<()> {
        crate::cli::run(self.cli, self.make.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_those_of_shardline() {
        let launch = Server::builder()
            .name("coins")
            .try_from_args(["coins", "serve", "--shards", "1", "--game", "a=1"])
            .unwrap();
        assert!(matches!(launch.cli.command, crate::cli::Command::Serve(_)));
        let err = Server::builder()
            .try_from_args(["coins", "serve", "--no-such-flag"])
            .err()
            .unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let help = Server::builder()
            .name("coins")
            .try_from_args(["coins", "--help"])
            .err()
            .unwrap()
            .to_string();
        assert!(help.contains("Usage: coins"), "{help}");
    }

    #[test]
    fn a_fixed_game_refuses_settings_and_game_with_reads_them() {
        let fixed = Server::builder().game(crate::game::ArenaFactory);
        assert!((fixed.make)(&toml::Table::new()).is_ok());
        let table: toml::Table = "speed = 3".parse().unwrap();
        let refused = (fixed.make)(&table).err().expect("settings refused");
        assert!(refused.contains("takes no settings"), "{refused}");
        let with = Server::builder().game_with(|t: &toml::Table| {
            crate::game::arena::ArenaSettings::from_table(t).map(crate::game::ArenaFactory::with)
        });
        assert!((with.make)(&table).is_ok());
        let bad: toml::Table = "colour = 'red'".parse().unwrap();
        assert!((with.make)(&bad).is_err());
    }
}
