//! The `scimlet` binary: `serve`, `tenant …`, `config check`, `precompile`.

mod cli;

fn main() -> anyhow::Result<()> {
    cli::run()
}
