//! (being written)
#[derive(clap::Args, Debug)]
pub struct SnapshotCli {}
pub fn run(_cli: SnapshotCli) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
