//! (being written)
#[derive(clap::Args, Debug)]
pub struct LoadgenCli {}
pub fn run(_cli: LoadgenCli) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
