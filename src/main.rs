fn main() {
    if let Err(e) = shardline::cli::main() {
        eprintln!("shardline: {e:#}");
        std::process::exit(2);
    }
}
