//! (being written)
#[derive(clap::Args, Debug)]
pub struct TuneCli {}
pub fn run(_cli: TuneCli) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
